"""payout_core.http_observability.observe_requests: every request counted and timed once,
under the route template, with label values a client cannot mint."""

from __future__ import annotations

import pytest
from aiohttp import web

from payout_core.http_observability import observe_requests
from payout_core.metrics import ServiceMetrics


async def _thing(request: web.Request) -> web.Response:
    return web.json_response({"id": request.match_info["id"]})


@pytest.fixture
def metrics() -> ServiceMetrics:
    return ServiceMetrics()


@pytest.fixture
async def client(aiohttp_client, metrics):
    app = web.Application(middlewares=[observe_requests(metrics)])
    app.router.add_get("/things/{id}", _thing)
    return await aiohttp_client(app)


def requests(metrics: ServiceMetrics, method: str, route: str, status: str) -> float | None:
    labels = {"method": method, "route": route, "status": status}
    return metrics.registry.get_sample_value("payout_http_requests_total", labels)


def timed(metrics: ServiceMetrics, method: str, route: str) -> float | None:
    labels = {"method": method, "route": route}
    return metrics.registry.get_sample_value("payout_http_request_duration_seconds_count", labels)


async def test_each_request_is_counted_and_timed_once_under_its_route(client, metrics):
    for thing in ("a", "b", "c"):
        assert (await client.get(f"/things/{thing}")).status == 200
    assert (await client.get("/nowhere")).status == 404
    assert requests(metrics, "GET", "/things/{id}", "200") == 3
    assert timed(metrics, "GET", "/things/{id}") == 3
    assert requests(metrics, "GET", "unmatched", "404") == 1


async def test_a_method_the_conventions_do_not_name_is_counted_as_other(client, metrics):
    # The HTTP parser accepts WebDAV's methods too: as label values they would be a client's
    # to choose.
    for method in ("PROPFIND", "MKCOL", "PROPFIND"):
        assert (await client.request(method, "/things/a")).status == 405
    assert requests(metrics, "_OTHER", "unmatched", "405") == 3
    assert timed(metrics, "_OTHER", "unmatched") == 3
    assert requests(metrics, "PROPFIND", "unmatched", "405") is None

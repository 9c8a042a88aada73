"""payout_core.http_observability.trace_requests: a SERVER span per request by the HTTP
conventions, in the caller's trace, asked of the sampler before anything else is collected."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from payout_core import http_observability
from payout_core.http_observability import trace_requests
from tests.support.traces import in_memory_tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture
def sampler() -> str:
    """Every test samples every root unless it says otherwise."""
    return "always_on"


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch, sampler: str) -> Iterator[InMemorySpanExporter]:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    with in_memory_tracing() as exporter:
        yield exporter


async def _thing(request: web.Request) -> web.Response:
    return web.json_response({"id": request.match_info["id"]})


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _missing(_request: web.Request) -> web.Response:
    raise web.HTTPNotFound()


async def _unavailable(_request: web.Request) -> web.Response:
    return web.json_response({}, status=503)


async def _broken(_request: web.Request) -> web.Response:
    raise RuntimeError("bug")


@pytest.fixture
async def client(aiohttp_client, exporter):
    app = web.Application(middlewares=[trace_requests])
    app.router.add_get("/things/{id}", _thing)
    app.router.add_get("/missing", _missing)
    app.router.add_get("/unavailable", _unavailable)
    app.router.add_get("/broken", _broken)
    app.router.add_get("/healthz", _healthz)
    return await aiohttp_client(app)


async def test_a_request_is_a_server_span_by_the_http_conventions(client, exporter):
    answer = await client.get("/things/7?expand=events", headers={"User-Agent": "sdk/1.0"})
    assert answer.status == 200
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /things/{id}"
    assert span.kind is SpanKind.SERVER
    assert span.parent is None
    assert {k: span.attributes[k] for k in span.attributes if k != "client.address"} == {
        "http.request.method": "GET",
        "http.route": "/things/{id}",
        "url.scheme": "http",
        "url.path": "/things/7",
        "url.query": "expand=events",
        "server.address": "127.0.0.1",
        "server.port": client.port,
        "network.protocol.version": "1.1",
        "user_agent.original": "sdk/1.0",
        "http.response.status_code": 200,
    }
    assert span.status.status_code is StatusCode.UNSET


async def test_the_callers_trace_is_continued(client, exporter):
    traceparent = f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"
    await client.get("/things/7", headers={"traceparent": traceparent, "tracestate": "v=1"})
    (span,) = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == CALLER_SPAN_ID
    assert span.context.trace_state.get("v") == "1"


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [("/missing", 404, False), ("/unavailable", 503, True), ("/broken", 500, True)],
)
async def test_a_server_error_marks_the_span_and_a_client_error_does_not(
    client, exporter, path, status, error
):
    answer = await client.get(path)
    assert answer.status == status
    (span,) = exporter.get_finished_spans()
    assert span.attributes["http.response.status_code"] == status
    assert (span.status.status_code is StatusCode.ERROR) is error
    assert span.attributes.get("error.type") == (str(status) if error else None)


async def test_unknown_routes_and_methods_do_not_name_spans(client, exporter):
    await client.get("/no/such/path/123")
    await client.request("PROPFIND", "/things/7")
    names = [s.name for s in exporter.get_finished_spans()]
    assert names == ["GET", "HTTP"]
    other = exporter.get_finished_spans()[1]
    assert other.attributes["http.request.method"] == "_OTHER"
    assert other.attributes["http.request.method_original"] == "PROPFIND"


async def test_probes_are_not_traced(client, exporter):
    assert (await client.get("/healthz")).status == 200
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize("sampler", ["parentbased_always_off"])
async def test_a_request_the_sampler_drops_collects_nothing_more(
    client, exporter, monkeypatch, sampler
):
    collected = []
    original = http_observability._recorded_attributes
    monkeypatch.setattr(
        http_observability,
        "_recorded_attributes",
        lambda request: collected.append(request.path) or original(request),
    )
    assert (await client.get("/things/1")).status == 200
    assert exporter.get_finished_spans() == ()
    assert collected == []
    # A caller's sampled trace is followed (parent-based): that span is recorded in full.
    await client.get("/things/2", headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"})
    (span,) = exporter.get_finished_spans()
    assert collected == ["/things/2"] and span.attributes["server.port"] == client.port

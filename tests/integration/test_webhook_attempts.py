"""One delivery attempt against a real HTTP server: redirects are not followed, an endless
body is read only up to the limit, a late answer is a timeout."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from aiohttp import web

from payout_core.metrics import ProcessorMetrics
from payout_core.webhooks.secrets import SecretBox, new_secret
from payout_processor.webhook_delivery import WebhookDeliverer


@pytest.fixture
async def deliverer(settings):
    made = WebhookDeliverer(
        None,  # type: ignore[arg-type]  # post() needs neither the database
        None,  # type: ignore[arg-type]  # nor the broker
        ProcessorMetrics(),
        dataclasses.replace(settings, webhook_timeout_s=1.0),
        SecretBox(None),
    )
    made.open_session()
    yield made
    await made.stop(0)


@pytest.fixture
async def server(aiohttp_server):
    hits: list[str] = []

    async def redirect(_request):
        hits.append("redirect")
        raise web.HTTPFound("/target")

    async def target(_request):
        hits.append("target")
        return web.Response(text="ok")

    async def endless(request):
        hits.append("endless")
        response = web.StreamResponse()
        await response.prepare(request)
        while True:  # never ends: only a bounded read lets the attempt finish
            await response.write(b"x" * 65536)

    async def late(_request):
        hits.append("late")
        await asyncio.sleep(5)  # past WEBHOOK_TIMEOUT_S (1 s here)
        return web.Response()

    app = web.Application()
    for path, handler in (
        ("/redirect", redirect),
        ("/target", target),
        ("/endless", endless),
        ("/late", late),
    ):
        app.router.add_route("*", path, handler)
    srv = await aiohttp_server(app)
    srv.hits = hits
    return srv


async def _attempt(deliverer, server, path):
    return await deliverer.post(str(server.make_url(path)), "evt_1", b"{}", [new_secret()])


async def test_a_redirect_is_a_failure_and_not_followed(deliverer, server):
    attempt = await _attempt(deliverer, server, "/redirect")
    assert (attempt.succeeded, attempt.status, attempt.error) == (False, 302, "HTTP 302")
    assert server.hits == ["redirect"]


async def test_an_endless_body_is_read_up_to_the_limit(deliverer, server):
    attempt = await _attempt(deliverer, server, "/endless")
    assert (attempt.succeeded, attempt.status) == (True, 200)
    assert server.hits == ["endless"]


async def test_a_late_answer_is_a_timeout(deliverer, server):
    attempt = await _attempt(deliverer, server, "/late")
    assert not attempt.succeeded and attempt.status is None
    assert attempt.error == "no answer within 1 s"


async def test_a_name_resolving_to_loopback_is_refused_at_delivery(settings, server):
    strict = WebhookDeliverer(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        ProcessorMetrics(),
        dataclasses.replace(settings, webhook_allow_private_urls=False),
        SecretBox(None),
    )
    strict.open_session()
    try:
        attempt = await strict.post(
            f"https://localhost:{server.port}/target", "evt_1", b"{}", [new_secret()]
        )
    finally:
        await strict.stop(0)
    assert not attempt.succeeded and "non-public address" in (attempt.error or "")
    assert server.hits == []

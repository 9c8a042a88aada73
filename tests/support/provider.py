"""The simulated provider in tests: started in-process for integration tests, read directly
from its database to count executions, and its test-only pause point."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from payout_core.settings import Settings
from payout_provider_sim.app import create_app
from tests.support.infra import Infra
from tests.support.payout_checks import fetch

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def provider_in_process(infra: Infra, **env: str) -> AsyncIterator[str]:
    """payout-provider-sim's app on a free loopback port of this event loop; its URL (also
    set as infra.provider_url, so infra.env() points processors at it)."""
    settings = Settings.from_env(infra.env(**env))
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    infra.provider_url = f"http://127.0.0.1:{port}"
    try:
        yield infra.provider_url
    finally:
        await runner.cleanup()


@asynccontextmanager
async def provider_stand_in(transfer: Handler, lookup: Handler) -> AsyncIterator[str]:
    """A provider of the test's own (the provider's HTTP API, answered by the two handlers)
    on a free loopback port of this event loop; its URL."""
    app = web.Application()
    app.router.add_post("/v1/transfers", transfer)
    app.router.add_get("/v1/transfers/{reference}", lookup)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def executions(provider_database_url: str) -> Counter[str]:
    """Executed transfers per reference (payout id): money moved, counted at the provider."""
    rows = await fetch(
        provider_database_url,
        "SELECT reference, count(*) AS n FROM transfers WHERE status = 'executed' "
        "GROUP BY reference",
    )
    return Counter({row["reference"]: row["n"] for row in rows})


async def pause_control(provider_url: str, action: str) -> dict[str, int]:
    """The test-only pause point: "arm" (hold the next execution's answer), "state",
    "release"."""
    method = "GET" if action == "state" else "POST"
    path = {"arm": "/test/pause", "state": "/test/pause", "release": "/test/release"}[action]
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, provider_url + path) as resp,
    ):
        resp.raise_for_status()
        return dict(await resp.json())

"""At its default settings one processor keeps many provider calls in flight at once, as
I/O-bound work needs (a provider answering in about a second). Neither the consumer nor the
provider client's connection pool (aiohttp's default is 100) may hold them back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from payout_core.settings import Settings
from payout_processor.wiring import bootstrap
from tests.support.infra import Infra
from tests.support.load import payout_body
from tests.support.payout_checks import wait_all_terminal
from tests.support.provider import provider_stand_in

# More than aiohttp's default pool of 100 connections, within the default concurrency.
IN_FLIGHT = 150


class HeldProvider:
    """A provider that answers no transfer until IN_FLIGHT of them are open at once (or a
    deadline passes, so a failing run still ends): the most calls it saw open together."""

    def __init__(self) -> None:
        self.open = 0
        self.most_open = 0
        self.all_open = asyncio.Event()

    async def transfer(self, request: web.Request) -> web.Response:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        if self.open >= IN_FLIGHT:
            self.all_open.set()
        try:
            await asyncio.wait_for(self.all_open.wait(), timeout=20)
        except TimeoutError:
            pass
        finally:
            self.open -= 1
        return web.json_response({"status": "executed"}, status=201)

    async def lookup(self, request: web.Request) -> web.Response:
        return web.json_response({"error": "not found"}, status=404)


@pytest.fixture
async def held_provider() -> AsyncIterator[tuple[HeldProvider, str]]:
    provider = HeldProvider()
    async with provider_stand_in(provider.transfer, provider.lookup) as url:
        yield provider, url


@pytest.fixture
def settings(fresh_infra: Infra, held_provider: tuple[HeldProvider, str]) -> Settings:
    """Every processor setting at its default; a database of its own (payouts are counted)."""
    _, url = held_provider
    return Settings.from_env(
        fresh_infra.env(
            API_HOST="127.0.0.1", PROCESSOR_HTTP_PORT="0", PROVIDER_URL=url, PROVIDER_TIMEOUT_S="30"
        )
    )


async def test_default_settings_keep_many_provider_calls_in_flight(
    api, auth, settings: Settings, held_provider: tuple[HeldProvider, str]
):
    provider, _ = held_provider
    for _ in range(IN_FLIGHT):
        assert (await api.post("/api/payouts/", json=payout_body(), headers=auth)).status == 201
    service = bootstrap(settings)
    await service.start()
    try:
        counts = await wait_all_terminal(settings.database_url, IN_FLIGHT, timeout=60)
    finally:
        await service.stop()
    assert counts["processed"] == IN_FLIGHT
    assert provider.most_open >= IN_FLIGHT, provider.most_open

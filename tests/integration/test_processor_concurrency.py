"""PROCESSOR_CONCURRENCY bounds how many payouts one processor works on at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from payout_core.settings import Settings
from payout_processor.wiring import bootstrap
from tests.support.infra import Infra
from tests.support.load import payout_body
from tests.support.payout_checks import status_counts, wait_all_terminal
from tests.support.provider import provider_in_process

CONCURRENCY = 3
PAYOUTS = 24


@pytest.fixture
async def settings(fresh_infra: Infra) -> AsyncIterator[Settings]:
    """Overrides the session's: this test counts payouts, so it needs a database of its own;
    the provider takes 100 ms per transfer, so payouts overlap."""
    async with provider_in_process(fresh_infra, PROVIDER_DELAY_MS="100"):
        yield Settings.from_env(
            fresh_infra.env(
                API_HOST="127.0.0.1",
                PROCESSOR_HTTP_PORT="0",
                PROCESSOR_CONCURRENCY=str(CONCURRENCY),
                PROCESSOR_PREFETCH="10",
            )
        )


async def test_no_more_payouts_in_processing_than_the_concurrency(api, auth, settings: Settings):
    for _ in range(PAYOUTS):
        assert (await api.post("/api/payouts/", json=payout_body(), headers=auth)).status == 201
    service = bootstrap(settings)
    await service.start()
    try:
        seen: list[int] = []
        done = asyncio.Event()

        async def sample() -> None:
            while not done.is_set():
                seen.append((await status_counts(settings.database_url))["processing"])
                await asyncio.sleep(0.02)

        sampler = asyncio.create_task(sample())
        await wait_all_terminal(settings.database_url, PAYOUTS, timeout=30)
        done.set()
        await sampler
    finally:
        await service.stop()
    assert 1 < max(seen) <= CONCURRENCY, seen  # in parallel, within the bound

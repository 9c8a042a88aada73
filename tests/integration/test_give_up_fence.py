"""The give-up against a transfer call of another delivery of the same payout (a duplicate, a
reconciler's re-enqueue), on real PostgreSQL, aimed at the two windows in which it could fail a
payout whose money then moves: a call still open when the give-up looks the transfer up, and a
call that begins after the give-up read the payout and before it fails it. The provider is a
test server that holds each call where the test says and counts the transfers it executes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.tables import payout_events, payouts
from payout_core.db.transitions import transition
from payout_core.domain.status import PayoutStatus
from payout_core.metrics import ProcessorMetrics
from payout_core.provider_client import ProviderClient
from payout_core.settings import Settings
from payout_processor.processing import (
    ENDED_FAILED,
    ENDED_PROCESSED,
    GIVEN_UP_FAILURE_CODE,
    CallMayBeInFlight,
    Outcome,
    PayoutProcessor,
)
from payout_processor.statements import ProcessingStatements
from tests.support.infra import Infra
from tests.support.load import payout_body
from tests.support.provider import provider_stand_in

HELD_S = 20  # the longest a held call waits for the test (a failing run still ends)


class HeldProvider:
    """Executes a transfer only when the test releases it; can hold the next lookup too."""

    def __init__(self) -> None:
        self.executions = 0
        self.transfer_open = asyncio.Event()
        self.release_transfer = asyncio.Event()
        self.hold_next_lookup = False
        self.lookup_open = asyncio.Event()
        self.release_lookup = asyncio.Event()

    async def transfer(self, request: web.Request) -> web.Response:
        self.transfer_open.set()
        await asyncio.wait_for(self.release_transfer.wait(), HELD_S)
        self.executions += 1
        return web.json_response({"status": "executed"}, status=201)

    async def lookup(self, request: web.Request) -> web.Response:
        if self.hold_next_lookup:
            self.hold_next_lookup = False
            self.lookup_open.set()
            await asyncio.wait_for(self.release_lookup.wait(), HELD_S)
        if self.executions:
            return web.json_response({"status": "executed"})
        return web.json_response({"error": "not found"}, status=404)


@pytest.fixture
async def held_provider() -> AsyncIterator[tuple[HeldProvider, str]]:
    provider = HeldProvider()
    async with provider_stand_in(provider.transfer, provider.lookup) as url:
        yield provider, url


@pytest.fixture
def settings(fresh_infra: Infra) -> Settings:
    """A database of this test's own: no processor of another test takes its payouts."""
    return Settings.from_env(fresh_infra.env(API_HOST="127.0.0.1", PROCESSOR_HTTP_PORT="0"))


@pytest.fixture
async def processor(
    engine: AsyncEngine, held_provider: tuple[HeldProvider, str]
) -> AsyncIterator[PayoutProcessor]:
    """Two deliveries of one payout are two calls on it: one processor serves both."""
    client = ProviderClient(held_provider[1], timeout_s=HELD_S + 10)
    yield PayoutProcessor(ProcessingStatements(engine), client, ProcessorMetrics())
    await client.close()


async def pending_payout(api, auth) -> uuid.UUID:
    resp = await api.post("/api/payouts/", json=payout_body(), headers=auth)
    assert resp.status == 201
    return uuid.UUID((await resp.json())["id"])


async def processing_since(engine: AsyncEngine, payout_id: uuid.UUID, ago: timedelta) -> None:
    """processing, its last transfer call begun `ago`: long over, by the provider's timeout."""
    async with engine.begin() as conn:
        moved = await transition(
            conn,
            payout_id,
            PayoutStatus.PENDING,
            PayoutStatus.PROCESSING,
            reason="processing_started",
            values={"transfer_started_at": sa.func.now() - ago},
        )
    assert moved is not None


async def state(engine: AsyncEngine, payout_id: uuid.UUID) -> tuple[str, str | None, list[str]]:
    async with engine.connect() as conn:
        status, code = (
            await conn.execute(
                sa.select(payouts.c.status, payouts.c.failure_code).where(payouts.c.id == payout_id)
            )
        ).one()
        history = (
            await conn.scalars(
                sa.select(payout_events.c.to_status)
                .where(payout_events.c.payout_id == payout_id)
                .order_by(payout_events.c.id)
            )
        ).all()
    return status, code, list(history)


async def the_open_call_pays_once(
    provider: HeldProvider,
    delivery: asyncio.Task[Outcome],
    engine: AsyncEngine,
    payout_id: uuid.UUID,
) -> None:
    """The transfer the give-up left alone executes, once, and its delivery ends the payout."""
    provider.release_transfer.set()
    assert (await delivery).name == ENDED_PROCESSED
    assert provider.executions == 1
    assert await state(engine, payout_id) == (
        "processed",
        None,
        ["pending", "processing", "processed"],
    )


async def test_a_give_up_while_another_delivery_has_a_call_open_decides_nothing(
    api, auth, engine: AsyncEngine, processor: PayoutProcessor, held_provider
):
    provider, _ = held_provider
    payout_id = await pending_payout(api, auth)
    delivery = asyncio.create_task(processor.process(payout_id, "first-delivery"))
    await asyncio.wait_for(provider.transfer_open.wait(), HELD_S)  # sent, not executed yet

    # The provider knows nothing of the transfer yet: failing now would pay a failed payout.
    with pytest.raises(CallMayBeInFlight):
        await processor.give_up(payout_id, "give-up")
    assert (await state(engine, payout_id))[0] == "processing"

    await the_open_call_pays_once(provider, delivery, engine, payout_id)


async def test_a_call_begun_while_the_give_up_looks_keeps_the_payout_from_failing(
    api, auth, engine: AsyncEngine, processor: PayoutProcessor, held_provider
):
    provider, _ = held_provider
    payout_id = await pending_payout(api, auth)
    await processing_since(engine, payout_id, timedelta(hours=1))

    provider.hold_next_lookup = True
    give_up = asyncio.create_task(processor.give_up(payout_id, "give-up"))
    await asyncio.wait_for(provider.lookup_open.wait(), HELD_S)  # it has read the payout
    # Another delivery: its own lookup finds nothing, so it marks a call and sends it.
    delivery = asyncio.create_task(processor.process(payout_id, "redelivery"))
    await asyncio.wait_for(provider.transfer_open.wait(), HELD_S)

    provider.release_lookup.set()  # the give-up's lookup: still nothing at the provider
    with pytest.raises(CallMayBeInFlight):
        await give_up
    assert (await state(engine, payout_id))[0] == "processing"

    await the_open_call_pays_once(provider, delivery, engine, payout_id)


async def test_a_give_up_with_no_call_open_and_nothing_at_the_provider_fails_the_payout(
    api, auth, engine: AsyncEngine, processor: PayoutProcessor, held_provider
):
    provider, _ = held_provider
    payout_id = await pending_payout(api, auth)
    await processing_since(engine, payout_id, timedelta(hours=1))

    outcome = await processor.give_up(payout_id, "give-up")

    assert (outcome.name, outcome.failure_code) == (ENDED_FAILED, GIVEN_UP_FAILURE_CODE)
    assert await state(engine, payout_id) == (
        "failed",
        GIVEN_UP_FAILURE_CODE,
        ["pending", "processing", "failed"],
    )
    # A delivery after it sends nothing.
    assert (await processor.process(payout_id, "late-delivery")).name == "skipped_duplicate"
    assert provider.executions == 0 and not provider.transfer_open.is_set()

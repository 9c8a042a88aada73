"""The reconciler ends: a payout in processing that the provider knows is settled by lookup,
not re-sent; one it does not know is re-enqueued at most RECONCILE_MAX_REENQUEUES times, then
flagged for operators (`payout-admin attention`, the payout_unfinished gauge), never failed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db import attention
from payout_core.db.tables import admin_audit, payouts
from payout_core.db.transitions import transition
from payout_core.domain.status import PayoutStatus
from payout_core.messaging.broker import Broker, BrokerUnavailable
from payout_core.provider_client import ProviderClient
from payout_core.reconcile import Reconciled, reconcile_once
from payout_core.settings import Settings
from tests.support.infra import Infra
from tests.support.load import NORMAL_ACCOUNT, payout_body
from tests.support.processes import run_admin

MAX_REENQUEUES = 2


@pytest.fixture
def settings(fresh_infra: Infra, provider_sim: str) -> Settings:
    """Overrides the session's: the reconciler must see this test's payouts only."""
    return Settings.from_env(fresh_infra.env())


@pytest.fixture
async def provider(settings: Settings) -> AsyncIterator[ProviderClient]:
    client = ProviderClient(settings.provider_url, timeout_s=5)
    yield client
    await client.close()


async def stranded_in_processing(api, auth, engine: AsyncEngine) -> uuid.UUID:
    """A payout left in processing, as by a processor that died before calling the provider."""
    resp = await api.post("/api/payouts/", json=payout_body(), headers=auth)
    assert resp.status == 201
    payout_id = uuid.UUID((await resp.json())["id"])
    async with engine.begin() as conn:
        moved = await transition(
            conn, payout_id, PayoutStatus.PENDING, PayoutStatus.PROCESSING, reason="test"
        )
    assert moved is not None
    return payout_id


async def test_an_unknown_payout_is_re_enqueued_a_bounded_number_of_times_then_flagged(
    api, auth, engine: AsyncEngine, broker: Broker, provider: ProviderClient, settings: Settings
):
    payout_id = await stranded_in_processing(api, auth, engine)

    async def reconcile() -> Reconciled:
        return await reconcile_once(engine, broker, provider, 0, max_reenqueues=MAX_REENQUEUES)

    passes = [await reconcile() for _ in range(MAX_REENQUEUES + 2)]
    assert passes == [Reconciled(reenqueued=1)] * MAX_REENQUEUES + [
        Reconciled(flagged=1),
        Reconciled(),  # flagged payouts are left to operators: the loop has ended
    ]
    async with engine.connect() as conn:
        status = await conn.scalar(sa.select(payouts.c.status).where(payouts.c.id == payout_id))
        listed = await attention.list_needing_attention(conn)
        counts = await attention.counts(conn, stuck_after_s=0)
    assert status == "processing", "flagged, never failed: money may not be assumed unmoved"
    assert [(row.id, row.flag_reason) for row in listed] == [(payout_id, "reenqueues_used_up")]
    assert counts["flagged"] == 1

    admin_env = {"DATABASE_URL": settings.database_url}
    stdout = await run_admin(admin_env, "attention")
    assert str(payout_id) in stdout and "reenqueues_used_up" in stdout

    # An operator hands it back: the reconciler takes it up again, its re-enqueues renewed.
    await run_admin(admin_env, "unflag", str(payout_id), "--actor", "ops")
    assert await reconcile() == Reconciled(reenqueued=1)
    async with engine.connect() as conn:
        listed = await attention.list_needing_attention(conn)
        audited = await conn.scalar(
            sa.select(admin_audit.c.details).where(
                admin_audit.c.action == "unflag", admin_audit.c.actor == "ops"
            )
        )
    assert listed == []
    assert audited == {"payout_id": str(payout_id), "was": "reenqueues_used_up"}
    with pytest.raises(AssertionError, match=f"no unfinished payout {payout_id} is flagged"):
        await run_admin(admin_env, "unflag", str(payout_id))


async def test_a_broker_outage_uses_up_no_re_enqueue(
    api, auth, engine: AsyncEngine, broker: Broker, provider: ProviderClient, settings: Settings
):
    """Passes whose publish fails (RabbitMQ not connected) raise and hand their claim back:
    more of them than the re-enqueues allowed flag nothing, and the broker back re-enqueues."""
    payout_id = await stranded_in_processing(api, auth, engine)
    unconnected = Broker(settings.amqp_url)  # never started: every publish is refused
    for _ in range(MAX_REENQUEUES + 2):
        with pytest.raises(BrokerUnavailable):
            await reconcile_once(engine, unconnected, provider, 0, max_reenqueues=MAX_REENQUEUES)
    async with engine.connect() as conn:
        count, flagged_at = (
            await conn.execute(
                sa.select(payouts.c.reenqueue_count, payouts.c.flagged_at).where(
                    payouts.c.id == payout_id
                )
            )
        ).one()
    assert (count, flagged_at) == (0, None)

    found = await reconcile_once(engine, broker, provider, 0, max_reenqueues=MAX_REENQUEUES)
    assert found == Reconciled(reenqueued=1)


async def test_a_payout_the_provider_executed_is_settled_by_lookup_not_re_enqueued(
    api, auth, engine: AsyncEngine, broker: Broker, provider: ProviderClient
):
    payout_id = await stranded_in_processing(api, auth, engine)
    # The provider executed it; the processor died before recording it.
    await provider.transfer(str(payout_id), Decimal("10.00"), "USD", NORMAL_ACCOUNT)

    found = await reconcile_once(engine, broker, provider, 0, max_reenqueues=MAX_REENQUEUES)
    assert found == Reconciled(resolved=1)
    async with engine.connect() as conn:
        status = await conn.scalar(sa.select(payouts.c.status).where(payouts.c.id == payout_id))
    assert status == "processed"

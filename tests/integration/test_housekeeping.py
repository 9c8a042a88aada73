"""Housekeeping prunes published outbox rows, expired idempotency records and old dead
letters in bounded batches, keeps everything younger or still needed, and runs one at a time
(a second runner skips its turn while the advisory lock is held)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.housekeeping import LOCK_KEY, Retention, housekeep_once
from payout_core.messaging.broker import Broker
from payout_core.metrics import ProcessorMetrics
from payout_core.settings import Settings
from tests.support.infra import Infra
from tests.support.load import payout_body
from tests.support.polling import eventually

BATCH = 1000
OLD_PUBLISHED = 2500  # three batches


@pytest.fixture
def settings(fresh_infra: Infra) -> Settings:
    """Overrides the session's: this test counts rows and dead letters."""
    return Settings.from_env(fresh_infra.env())


async def count(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text(sql)))


async def test_old_rows_and_dead_letters_are_pruned_in_batches_one_runner_at_a_time(
    api, auth, engine: AsyncEngine, broker: Broker
):
    keys = [f"hk-{uuid.uuid4()}" for _ in range(3)]
    for key in keys:
        headers = {**auth, "Idempotency-Key": key}
        assert (await api.post("/api/payouts/", json=payout_body(), headers=headers)).status == 201
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO outbox (routing_key, payload, published_at) SELECT 'x', '{}', "
                "now() - interval '2 hours' FROM generate_series(1, :n)"
            ),
            {"n": OLD_PUBLISHED},
        )
        await conn.execute(
            sa.text(
                "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' "
                "WHERE key = ANY(:keys)"
            ),
            {"keys": keys[:2]},
        )
    # A real dead letter: rejected from the work queue (x-death carries its time).
    channel = await broker.connection.channel()
    queue = await channel.get_queue(broker.topology.process_queue.name)
    message = await queue.get(timeout=10)
    await message.reject(requeue=False)
    dead = broker.topology.dead_queue

    async def dead_lettered() -> bool:
        return (await dead.declare()).message_count == 1

    await eventually(dead_lettered, what="one dead letter")
    recent_outbox = await count(engine, "SELECT count(*) FROM outbox") - OLD_PUBLISHED

    metrics = ProcessorMetrics()
    retention = Retention(outbox_published_s=3600, dead_letters_s=0, batch=BATCH)
    async with engine.connect() as holder:  # another runner holds the lock: this one skips
        await holder.execute(sa.select(sa.func.pg_advisory_lock(LOCK_KEY)))
        assert await housekeep_once(engine, dead, retention, metrics) is None
        await holder.execute(sa.select(sa.func.pg_advisory_unlock(LOCK_KEY)))
    deleted = await housekeep_once(engine, dead, retention, metrics)

    assert deleted == {
        "outbox": OLD_PUBLISHED,
        "idempotency_keys": 2,
        "dead_letters": 1,
        "webhook_events": 0,  # the events of this test are recent
        "webhook_attempts": 0,
    }
    assert await count(engine, "SELECT count(*) FROM outbox") == recent_outbox  # kept
    assert await count(engine, "SELECT count(*) FROM idempotency_keys") == 1
    assert (await dead.declare()).message_count == 0
    sample = metrics.registry.get_sample_value
    assert sample("payout_housekeeping_runs_total", {"result": "skipped"}) == 1
    assert sample("payout_housekeeping_deleted_total", {"table": "outbox"}) == OLD_PUBLISHED
    await channel.close()

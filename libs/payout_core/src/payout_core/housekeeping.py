"""Pruning what would otherwise grow without bound: published outbox rows, expired
idempotency records, old dead letters, webhook events and attempts. Bounded batches (short
statements, short locks), one runner at a time across all processes (a PostgreSQL advisory
lock; a second runner skips its turn), with metrics. Runs on the processor's timer and as
`payout-admin housekeeping`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payout_core.db.tables import IDEMPOTENCY_KEY_TTL
from payout_core.logging import get_logger
from payout_core.metrics import ProcessorMetrics

log = get_logger(__name__)
LOCK_KEY = 0x686B6565  # "hkee"
# Batches per table and run: a run ends even while rows keep coming; the next one goes on.
MAX_BATCHES = 50

_PRUNE_OUTBOX = sa.text("""
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox
    WHERE published_at IS NOT NULL AND published_at < now() - make_interval(secs => :keep_s)
    ORDER BY id LIMIT :batch)
""")
_PRUNE_IDEMPOTENCY = sa.text(f"""
DELETE FROM idempotency_keys WHERE (client_id, key) IN (
    SELECT client_id, key FROM idempotency_keys
    WHERE created_at < now() - interval '{IDEMPOTENCY_KEY_TTL}'
    ORDER BY created_at LIMIT :batch)
""")

# Webhook events and delivery attempts past WEBHOOK_EVENT_RETENTION_S, oldest first.
_PRUNE_WEBHOOK_EVENTS = sa.text("""
DELETE FROM webhook_events WHERE id IN (
    SELECT id FROM webhook_events WHERE created_at < now() - make_interval(secs => :keep_s)
    ORDER BY created_at LIMIT :batch)
""")
_PRUNE_WEBHOOK_ATTEMPTS = sa.text("""
DELETE FROM webhook_attempts WHERE id IN (
    SELECT id FROM webhook_attempts WHERE at < now() - make_interval(secs => :keep_s)
    ORDER BY at LIMIT :batch)
""")


@dataclass(frozen=True)
class Retention:
    outbox_published_s: float
    dead_letters_s: float
    batch: int
    webhook_events_s: float = 30 * 86_400.0


async def housekeep_once(
    engine: AsyncEngine,
    dead_queue: AbstractQueue | None,
    retention: Retention,
    metrics: ProcessorMetrics | None = None,
) -> dict[str, int] | None:
    """One pass; rows deleted per table, or None when another runner holds the lock."""
    async with engine.connect() as conn:
        locked = await conn.scalar(sa.select(sa.func.pg_try_advisory_lock(LOCK_KEY)))
        await conn.commit()
        if not locked:
            _count_run(metrics, "skipped")
            return None
        try:
            deleted = {
                "outbox": await _prune(
                    conn, _PRUNE_OUTBOX, batch=retention.batch, keep_s=retention.outbox_published_s
                ),
                "idempotency_keys": await _prune(conn, _PRUNE_IDEMPOTENCY, batch=retention.batch),
                "dead_letters": 0,
                "webhook_events": await _prune(
                    conn,
                    _PRUNE_WEBHOOK_EVENTS,
                    batch=retention.batch,
                    keep_s=retention.webhook_events_s,
                ),
                "webhook_attempts": await _prune(
                    conn,
                    _PRUNE_WEBHOOK_ATTEMPTS,
                    batch=retention.batch,
                    keep_s=retention.webhook_events_s,
                ),
            }
            if dead_queue is not None:
                # Dated by the broker (x-death), compared with the one clock (PostgreSQL's).
                now = (await conn.execute(sa.select(sa.func.now()))).scalar_one()
                await conn.commit()
                deleted["dead_letters"] = await prune_dead_letters(
                    dead_queue, now - timedelta(seconds=retention.dead_letters_s), retention.batch
                )
        except Exception:
            _count_run(metrics, "failed")
            raise
        finally:
            await conn.execute(sa.select(sa.func.pg_advisory_unlock(LOCK_KEY)))
            await conn.commit()
    _count_run(metrics, "ran")
    if metrics is not None:
        for table, count in deleted.items():
            metrics.housekeeping_deleted.labels(table=table).inc(count)
    if any(deleted.values()):
        log.info("housekeeping_pruned", **deleted)
    return deleted


def _count_run(metrics: ProcessorMetrics | None, result: str) -> None:
    if metrics is not None:
        metrics.housekeeping_runs.labels(result=result).inc()


async def _prune(conn: AsyncConnection, statement: sa.TextClause, **params: float) -> int:
    total = 0
    for _ in range(MAX_BATCHES):
        deleted = (await conn.execute(statement, params)).rowcount
        await conn.commit()
        total += deleted
        if deleted < params["batch"]:
            break
    return total


def _dead_at(message: AbstractIncomingMessage) -> datetime | None:
    deaths = (message.headers or {}).get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        at = deaths[0].get("time")
        if isinstance(at, datetime):
            return at if at.tzinfo else at.replace(tzinfo=UTC)
    return None


async def prune_dead_letters(queue: AbstractQueue, cutoff: datetime, limit: int) -> int:
    """Drop dead letters that died before cutoff from the head of the queue (oldest first);
    stop at the first younger one (handed back) or one without a death time (kept)."""
    dropped = 0
    while dropped < limit:
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            break
        dead_at = _dead_at(message)
        if dead_at is None or dead_at >= cutoff:
            await message.nack(requeue=True)
            break
        await message.ack()
        dropped += 1
    return dropped

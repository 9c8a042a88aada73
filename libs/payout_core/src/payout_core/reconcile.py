"""Finds payouts stuck in pending or processing and settles them: a payout in processing is
first looked up at the provider (an executed or declined transfer ends it right here); the
rest go back on the work queue, at most RECONCILE_MAX_REENQUEUES times each, after which the
payout is flagged for operators (`payout-admin attention`) instead of looping forever.

Safe to run anywhere, often and concurrently (the processor's timer, `payout-admin reconcile`,
the chart's CronJob while the processor is scaled to zero): a payout is claimed with SKIP
LOCKED in a statement committed before anything is published (no row lock is held across a
broker publish), and processing is idempotent, so a payout enqueued twice is paid once.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.attention import REENQUEUES_USED_UP
from payout_core.db.transitions import transition
from payout_core.domain.failures import failure_message
from payout_core.domain.status import PayoutStatus
from payout_core.logging import get_logger
from payout_core.messaging.broker import Broker, OutgoingMessage
from payout_core.messaging.contracts import HEADER_REQUEST_ID, ROUTING_KEY_CREATED, PayoutCreated
from payout_core.metrics import ProcessorMetrics
from payout_core.provider_client import ProviderClient, ProviderInDoubt, Transfer

log = get_logger(__name__)
LOOKUPS_IN_FLIGHT = 8

# Claim stuck payouts in one committed statement: count a re-enqueue for each, or flag those
# whose re-enqueues are used up. Locked rows (in flight elsewhere) are skipped.
_CLAIM = (
    sa.text("""
WITH stuck AS (
    SELECT id FROM payouts
    WHERE status IN ('pending', 'processing') AND deleted_at IS NULL AND flagged_at IS NULL
        AND updated_at < now() - make_interval(secs => :stuck_after_s)
        AND (reenqueued_at IS NULL OR reenqueued_at < least(
            now() - make_interval(secs => :stuck_after_s), :not_since))
    ORDER BY updated_at LIMIT :batch_size
    FOR UPDATE SKIP LOCKED
)
UPDATE payouts p SET
    reenqueued_at = now(),
    reenqueue_count = p.reenqueue_count + (p.reenqueue_count < :max_reenqueues)::int,
    flagged_at = CASE WHEN p.reenqueue_count >= :max_reenqueues THEN now() END,
    flag_reason = CASE WHEN p.reenqueue_count >= :max_reenqueues THEN :flag_reason END
FROM stuck WHERE p.id = stuck.id
RETURNING p.id, p.status, p.created_at, p.request_id, p.flagged_at IS NOT NULL AS flagged
""")
    .bindparams(sa.bindparam("not_since", type_=sa.DateTime(timezone=True)))
    .columns(
        sa.column("id", sa.Uuid),
        sa.column("status", sa.Text),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("request_id", sa.Text),
        sa.column("flagged", sa.Boolean),
    )
)
FAR_FUTURE = datetime.fromisoformat("9999-01-01T00:00:00+00:00")

# Hand back re-enqueues whose publish failed (the broker away): an outage uses up none of a
# payout's re-enqueues, so it is never flagged for one; the next pass claims it again.
_UNCLAIM = sa.text("""
UPDATE payouts SET reenqueue_count = reenqueue_count - 1, reenqueued_at = NULL
WHERE id = ANY(:ids) AND reenqueue_count > 0 AND flagged_at IS NULL
""").bindparams(sa.bindparam("ids", type_=ARRAY(sa.Uuid)))


@dataclass(frozen=True)
class Reconciled:
    reenqueued: int = 0
    resolved: int = 0
    flagged: int = 0

    @property
    def claimed(self) -> int:
        return self.reenqueued + self.resolved + self.flagged


async def reconcile_once(
    engine: AsyncEngine,
    broker: Broker,
    provider: ProviderClient,
    stuck_after_s: float,
    *,
    max_reenqueues: int,
    batch_size: int = 500,
    not_since: datetime | None = None,
    metrics: ProcessorMetrics | None = None,
) -> Reconciled:
    """Settle up to batch_size stuck payouts.

    not_since: leave alone payouts re-enqueued at or after that time. A caller that repeats
    this until nothing is left passes the time it started, lest a short threshold make it
    pick up what it has just re-enqueued.
    """
    params = {
        "stuck_after_s": stuck_after_s,
        "not_since": not_since or FAR_FUTURE,
        "batch_size": batch_size,
        "max_reenqueues": max_reenqueues,
        "flag_reason": REENQUEUES_USED_UP,
    }
    async with engine.begin() as conn:
        rows = (await conn.execute(_CLAIM, params)).all()
    if not rows:
        return Reconciled()
    in_processing = [row.id for row in rows if row.status == PayoutStatus.PROCESSING.value]
    resolved = await _resolve_by_lookup(engine, provider, in_processing, metrics)
    flagged = [row for row in rows if row.flagged and row.id not in resolved]
    for row in flagged:
        log.error("payout_flagged", payout_id=str(row.id), reason=REENQUEUES_USED_UP)
    to_enqueue = [row for row in rows if not row.flagged and row.id not in resolved]
    if to_enqueue:
        try:
            await broker.publish_batch(
                [
                    OutgoingMessage(
                        routing_key=ROUTING_KEY_CREATED,
                        body=PayoutCreated(payout_id=row.id, created_at=row.created_at).to_body(),
                        message_id=str(row.id),
                        headers={HEADER_REQUEST_ID: row.request_id or ""},
                    )
                    for row in to_enqueue
                ]
            )
        except Exception:
            async with engine.begin() as conn:
                await conn.execute(_UNCLAIM, {"ids": [row.id for row in to_enqueue]})
            raise
    result = Reconciled(len(to_enqueue), len(resolved), len(flagged))
    if metrics is not None:
        for action in ("reenqueued", "resolved", "flagged"):
            metrics.reconciled.labels(action=action).inc(getattr(result, action))
    log.info("reconciled_stuck_payouts", **result.__dict__)
    return result


async def _resolve_by_lookup(
    engine: AsyncEngine,
    provider: ProviderClient,
    payout_ids: list[uuid.UUID],
    metrics: ProcessorMetrics | None,
) -> set[uuid.UUID]:
    """Payouts in processing whose transfer the provider knows, ended by its answer here."""
    slots = asyncio.Semaphore(LOOKUPS_IN_FLIGHT)

    async def settle(payout_id: uuid.UUID) -> uuid.UUID | None:
        async with slots:
            try:
                known = await provider.lookup(str(payout_id))
            except ProviderInDoubt as exc:  # provider away: the re-enqueued message retries
                log.warning("reconcile_lookup_failed", payout_id=str(payout_id), error=str(exc))
                return None
        if known is None:
            return None
        to_status = await _finish(engine, payout_id, known)
        if to_status is not None and metrics is not None:
            metrics.transitions.labels(
                **{"from": PayoutStatus.PROCESSING.value, "to": to_status.value}
            ).inc()
        # Settled here or (a racing processor) just now elsewhere: nothing to re-enqueue.
        return payout_id

    settled = await asyncio.gather(*(settle(payout_id) for payout_id in payout_ids))
    return {payout_id for payout_id in settled if payout_id is not None}


async def _finish(
    engine: AsyncEngine, payout_id: uuid.UUID, known: Transfer
) -> PayoutStatus | None:
    failure_code = known.payout_failure_code
    to_status = PayoutStatus.FAILED if failure_code else PayoutStatus.PROCESSED
    async with engine.begin() as conn:
        moved = await transition(
            conn,
            payout_id,
            PayoutStatus.PROCESSING,
            to_status,
            reason=f"reconciled_{failure_code or 'provider_succeeded'}",
            values={
                "failure_code": failure_code,
                "failure_message": failure_message(failure_code) if failure_code else None,
                "processed_at": sa.func.now(),
            },
        )
    return to_status if moved is not None else None

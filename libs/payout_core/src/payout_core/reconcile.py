"""Finds payouts stuck in pending or processing and puts them back on the work queue.

Safe to run anywhere and often: processing is idempotent, so a payout enqueued twice is
processed once.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.tables import payouts
from payout_core.logging import get_logger
from payout_core.messaging.broker import Broker, OutgoingMessage
from payout_core.messaging.contracts import HEADER_REQUEST_ID, ROUTING_KEY_CREATED, PayoutCreated

log = get_logger(__name__)


async def reconcile_once(
    engine: AsyncEngine,
    broker: Broker,
    stuck_after_s: float,
    batch_size: int = 500,
    *,
    not_since: datetime | None = None,
) -> int:
    """Re-enqueue up to batch_size stuck payouts; the number re-enqueued.

    not_since: leave alone payouts re-enqueued at or after that time. A caller that repeats
    this until nothing is left passes the time it started, lest a short threshold make it
    pick up what it has just re-enqueued, forever.
    """
    age = sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, stuck_after_s)
    reenqueued_before = age if not_since is None else sa.func.least(age, not_since)
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                sa.select(payouts.c.id, payouts.c.created_at, payouts.c.request_id)
                .where(
                    payouts.c.status.in_(("pending", "processing")),
                    payouts.c.deleted_at.is_(None),
                    payouts.c.updated_at < age,
                    sa.or_(
                        payouts.c.reenqueued_at.is_(None),
                        payouts.c.reenqueued_at < reenqueued_before,
                    ),
                )
                .order_by(payouts.c.updated_at)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return 0
        await broker.publish_batch(
            [
                OutgoingMessage(
                    routing_key=ROUTING_KEY_CREATED,
                    body=PayoutCreated(payout_id=row.id, created_at=row.created_at).to_body(),
                    message_id=str(row.id),
                    headers={HEADER_REQUEST_ID: row.request_id or ""},
                )
                for row in rows
            ]
        )
        await conn.execute(
            payouts.update()
            .where(payouts.c.id.in_([row.id for row in rows]))
            .values(reenqueued_at=sa.func.now())
        )
    log.info("reconciled_stuck_payouts", count=len(rows))
    return len(rows)

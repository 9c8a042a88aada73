"""Finds payouts stuck in pending or processing and puts them back on the work queue.

Safe to run anywhere and often: processing is idempotent, so a payout enqueued twice is
processed once.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.tables import payouts
from payout_core.logging import get_logger
from payout_core.messaging.broker import Broker, OutgoingMessage
from payout_core.messaging.contracts import HEADER_REQUEST_ID, ROUTING_KEY_CREATED, PayoutCreated

log = get_logger(__name__)


async def reconcile_once(
    engine: AsyncEngine, broker: Broker, stuck_after_s: float, batch_size: int = 500
) -> int:
    """Re-enqueue up to batch_size stuck payouts; the number re-enqueued."""
    age = sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, stuck_after_s)
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                sa.select(payouts.c.id, payouts.c.created_at, payouts.c.request_id)
                .where(
                    payouts.c.status.in_(("pending", "processing")),
                    payouts.c.deleted_at.is_(None),
                    payouts.c.updated_at < age,
                    sa.or_(payouts.c.reenqueued_at.is_(None), payouts.c.reenqueued_at < age),
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

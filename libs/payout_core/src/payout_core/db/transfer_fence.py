"""The fence between provider transfer calls and a give-up.

A give-up (the last attempt ended on errors of our own) looks the transfer up and fails the
payout when the provider knows nothing of it. That is safe only if no call for the payout can
still execute, and another delivery of the same payout (a duplicate, a reconciler's
re-enqueue) may have one in flight. So:

- every transfer call is preceded by a committed `transfer_started_at = now()` on its payout:
  START sets it on the payouts it moves to processing, `begin_transfer` on one that already
  was, and refuses once the payout has ended (no call is then sent);
- the give-up reads it and, while a call begun then may still be open (the provider's timeout
  and a grace: `call_may_be_in_flight`), decides nothing;
- its failing statement requires the value it read (`unchanged_since`), so a call begun after
  that read keeps the payout processing, for that call or a later lookup to settle.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from payout_core.db.tables import payouts
from payout_core.domain.status import PayoutStatus

# Between the committed mark and the request leaving (the call's own timeout, which includes
# waiting for a pooled connection, runs from there): scheduling, a busy event loop.
CALL_START_GRACE_S = 2.0

# Seconds since the latest call began, by the database's clock (NULL: no call ever).
SECONDS_SINCE_CALL_START = sa.extract("epoch", sa.func.now() - payouts.c.transfer_started_at).label(
    "seconds_since_call_start"
)


async def begin_transfer(conn: AsyncConnection, payout_id: uuid.UUID) -> bool:
    """Mark a call about to be sent for a payout already processing; False when it no longer
    is (it ended meanwhile): then nothing may be sent."""
    result = await conn.execute(
        payouts.update()
        .where(payouts.c.id == payout_id, payouts.c.status == PayoutStatus.PROCESSING.value)
        .values(transfer_started_at=sa.func.now())
        .returning(payouts.c.id)
    )
    return result.first() is not None


def call_may_be_in_flight(seconds_since_call_start: float | None, timeout_s: float) -> bool:
    return (
        seconds_since_call_start is not None
        and seconds_since_call_start < timeout_s + CALL_START_GRACE_S
    )


def unchanged_since(seen: datetime | None) -> sa.ColumnElement[bool]:
    """No call began since `seen` was read."""
    return payouts.c.transfer_started_at.is_not_distinct_from(seen)

"""The one way a payout's status changes: a conditional UPDATE plus a history row."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from payout_core.db import status_trace
from payout_core.db.tables import payout_events, payouts
from payout_core.domain.status import PayoutStatus, can_transition


async def record_event(
    conn: AsyncConnection,
    payout_id: uuid.UUID,
    from_status: PayoutStatus | None,
    to_status: PayoutStatus,
    reason: str,
    request_id: str | None,
) -> None:
    await conn.execute(
        payout_events.insert().values(
            payout_id=payout_id,
            from_status=None if from_status is None else from_status.value,
            to_status=to_status.value,
            reason=reason,
            request_id=request_id,
        )
    )


async def transition(
    conn: AsyncConnection,
    payout_id: uuid.UUID,
    from_status: PayoutStatus,
    to_status: PayoutStatus,
    *,
    reason: str,
    request_id: str | None = None,
    expected_version: int | None = None,
    values: Mapping[str, Any] | None = None,
) -> RowMapping | None:
    """Move the payout if, and only if, it is still in from_status (and at expected_version).

    Returns the updated row, or None when another writer got there first.
    """
    if not can_transition(from_status, to_status):
        raise ValueError(f"illegal transition {from_status} -> {to_status}")
    await status_trace.set_current(conn, payout_id)  # for its webhook event (tracing on)
    condition = sa.and_(payouts.c.id == payout_id, payouts.c.status == from_status.value)
    if expected_version is not None:
        condition = sa.and_(condition, payouts.c.version == expected_version)
    result = await conn.execute(
        payouts.update()
        .where(condition)
        .values(
            status=to_status.value,
            updated_at=sa.func.now(),
            version=payouts.c.version + 1,
            **(values or {}),
        )
        .returning(*payouts.c)
    )
    row = result.mappings().first()
    if row is not None:
        await record_event(conn, payout_id, from_status, to_status, reason, request_id)
    return row

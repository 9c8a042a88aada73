"""The processor's two status changes, each one statement: the conditional UPDATE and its
history row together (as payout_core.db.transitions does in two), so one round trip and one
commit on an autocommit connection. These run once or twice per payout: the hot path."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from payout_core.domain.status import PayoutStatus

# Lock the payout, move it pending -> processing if it is pending and not deleted, and return
# what processing needs. `target` is read (and locked) before `started` updates the row.
_START = (
    sa.text("""
WITH target AS (
    SELECT id, status, deleted_at, amount, currency, recipient_details, created_at
    FROM payouts WHERE id = :id FOR UPDATE
), started AS (
    UPDATE payouts SET status = 'processing', updated_at = now(), version = payouts.version + 1
    FROM target
    WHERE payouts.id = target.id AND payouts.status = 'pending' AND payouts.deleted_at IS NULL
    RETURNING payouts.id
), event AS (
    INSERT INTO payout_events (payout_id, from_status, to_status, reason, request_id)
    SELECT id, 'pending', 'processing', 'processing_started', :request_id FROM started
)
SELECT target.*, EXISTS (SELECT 1 FROM started) AS started FROM target
""")
    .bindparams(
        sa.bindparam("id", type_=sa.Uuid),
        sa.bindparam("request_id", type_=sa.Text),
    )
    .columns(
        sa.column("id", sa.Uuid),
        sa.column("status", sa.Text),
        sa.column("deleted_at", sa.DateTime(timezone=True)),
        sa.column("amount", sa.Numeric(22, 4)),
        sa.column("currency", sa.Text),
        sa.column("recipient_details", JSONB),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("started", sa.Boolean),
    )
)

# processing -> processed | failed, only if still processing; the payout's created_at.
_FINISH = (
    sa.text("""
WITH finished AS (
    UPDATE payouts SET status = :to_status, failure_code = :failure_code,
        failure_message = :failure_message, processed_at = now(), updated_at = now(),
        version = version + 1
    WHERE id = :id AND status = 'processing'
    RETURNING id, created_at
), event AS (
    INSERT INTO payout_events (payout_id, from_status, to_status, reason, request_id)
    SELECT id, 'processing', :to_status, :reason, :request_id FROM finished
)
SELECT created_at FROM finished
""")
    .bindparams(
        sa.bindparam("id", type_=sa.Uuid),
        sa.bindparam("to_status", type_=sa.Text),
        sa.bindparam("failure_code", type_=sa.Text),
        sa.bindparam("failure_message", type_=sa.Text),
        sa.bindparam("reason", type_=sa.Text),
        sa.bindparam("request_id", type_=sa.Text),
    )
    .columns(sa.column("created_at", sa.DateTime(timezone=True)))
)


@dataclass(frozen=True)
class Target:
    """A payout as processing sees it, after start_processing."""

    status: PayoutStatus
    deleted: bool
    started: bool  # this call moved it pending -> processing
    amount: Decimal
    currency: str
    account: str
    created_at: datetime


async def start_processing(
    conn: AsyncConnection, payout_id: uuid.UUID, request_id: str | None
) -> Target | None:
    """None for an unknown payout. `status` is the one found, before this call moved it."""
    row: Any = (await conn.execute(_START, {"id": payout_id, "request_id": request_id})).first()
    if row is None:
        return None
    return Target(
        status=PayoutStatus(row.status),
        deleted=row.deleted_at is not None,
        started=row.started,
        amount=row.amount,
        currency=row.currency,
        account=row.recipient_details["account"],
        created_at=row.created_at,
    )


async def finish_processing(
    conn: AsyncConnection,
    payout_id: uuid.UUID,
    to_status: PayoutStatus,
    *,
    failure_code: str | None,
    failure_message: str | None,
    reason: str,
    request_id: str | None,
) -> datetime | None:
    """The payout's created_at if this call finished it; None if it was not processing."""
    params = {
        "id": payout_id,
        "to_status": to_status.value,
        "failure_code": failure_code,
        "failure_message": failure_message,
        "reason": reason,
        "request_id": request_id,
    }
    return (await conn.execute(_FINISH, params)).scalar()

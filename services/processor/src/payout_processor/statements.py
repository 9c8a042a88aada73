"""The processor's two status changes as set-based statements: the conditional UPDATE and its
history rows together (as payout_core.db.transitions does for one payout in two), for every
payout of a batch (see batching.py), in one round trip and one commit."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.engine import autocommit
from payout_core.db.status_trace import SET_IN_STATEMENT, setting_value
from payout_core.domain.status import PayoutStatus, can_transition
from payout_core.tracing import context_headers
from payout_processor.batching import Batcher

# Lock the payouts (in id order: two batches never wait on each other in a cycle), move those
# pending and not deleted to processing, and return what processing needs. `target` is read
# and locked before `started` updates the rows.
_START = (
    sa.text(f"""
WITH {SET_IN_STATEMENT}, input AS (
    SELECT i.* FROM unnest(:ids, :request_ids) AS i(id, request_id)
        LEFT JOIN trace_context ON true
), target AS (
    SELECT p.id, p.status, p.deleted_at, p.amount, p.currency, p.recipient_details,
        p.created_at
    FROM payouts p JOIN input USING (id) ORDER BY p.id FOR UPDATE OF p
), started AS (
    UPDATE payouts SET status = 'processing', updated_at = now(), version = payouts.version + 1
    FROM target
    WHERE payouts.id = target.id AND payouts.status = 'pending' AND payouts.deleted_at IS NULL
    RETURNING payouts.id
), event AS (
    INSERT INTO payout_events (payout_id, from_status, to_status, reason, request_id)
    SELECT id, 'pending', 'processing', 'processing_started', input.request_id
    FROM started JOIN input USING (id)
)
SELECT target.*, target.id IN (SELECT id FROM started) AS started FROM target
""")
    .bindparams(
        sa.bindparam("ids", type_=ARRAY(sa.Uuid)),
        sa.bindparam("request_ids", type_=ARRAY(sa.Text)),
        sa.bindparam("trace_context", type_=sa.Text),
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

# processing -> processed | failed, for those still processing; their created_at.
_FINISH = (
    sa.text(f"""
WITH {SET_IN_STATEMENT}, input AS (
    SELECT i.* FROM unnest(:ids, :to_statuses, :failure_codes, :failure_messages, :reasons,
        :request_ids) AS i(id, to_status, failure_code, failure_message, reason, request_id)
        LEFT JOIN trace_context ON true
), finished AS (
    UPDATE payouts SET status = input.to_status, failure_code = input.failure_code,
        failure_message = input.failure_message, processed_at = now(), updated_at = now(),
        version = payouts.version + 1
    FROM input
    WHERE payouts.id = input.id AND payouts.status = 'processing'
    RETURNING payouts.id, payouts.created_at
), event AS (
    INSERT INTO payout_events (payout_id, from_status, to_status, reason, request_id)
    SELECT id, 'processing', input.to_status, input.reason, input.request_id
    FROM finished JOIN input USING (id)
)
SELECT id, created_at FROM finished
""")
    .bindparams(
        sa.bindparam("ids", type_=ARRAY(sa.Uuid)),
        *(
            sa.bindparam(name, type_=ARRAY(sa.Text))
            for name in (
                "to_statuses",
                "failure_codes",
                "failure_messages",
                "reasons",
                "request_ids",
            )
        ),
        sa.bindparam("trace_context", type_=sa.Text),
    )
    .columns(sa.column("id", sa.Uuid), sa.column("created_at", sa.DateTime(timezone=True)))
)


@dataclass(frozen=True)
class Target:
    """A payout as processing sees it, after start()."""

    status: PayoutStatus  # as found, before this call moved it
    deleted: bool
    started: bool  # this call moved it pending -> processing
    amount: Decimal
    currency: str
    account: str | None  # None: the stored payout is unusable (it fails alone, not its batch)
    created_at: datetime


@dataclass(frozen=True)
class _Start:
    payout_id: uuid.UUID
    request_id: str | None
    trace: Mapping[str, str]  # the caller's trace context, for the webhook event (status_trace)


@dataclass(frozen=True)
class _Finish:
    payout_id: uuid.UUID
    to_status: PayoutStatus
    failure_code: str | None
    failure_message: str | None
    reason: str
    request_id: str | None
    trace: Mapping[str, str]


def _payout_id(call: _Start | _Finish) -> uuid.UUID:
    return call.payout_id


def _trace_context(calls: Sequence[_Start | _Finish]) -> str | None:
    return setting_value({c.payout_id: c.trace for c in calls})


class ProcessingStatements:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._starts: Batcher[_Start, Target | None] = Batcher(
            self._start_all, _payout_id, name="start processing"
        )
        self._finishes: Batcher[_Finish, datetime | None] = Batcher(
            self._finish_all, _payout_id, name="finish processing"
        )

    async def start(self, payout_id: uuid.UUID, request_id: str | None) -> Target | None:
        """pending -> processing if it still is; None for an unknown payout."""
        return await self._starts.submit(_Start(payout_id, request_id, context_headers()))

    async def finish(
        self,
        payout_id: uuid.UUID,
        to_status: PayoutStatus,
        *,
        failure_code: str | None,
        failure_message: str | None,
        reason: str,
        request_id: str | None,
    ) -> datetime | None:
        """processing -> to_status; the payout's created_at, or None if it was not processing."""
        if not can_transition(PayoutStatus.PROCESSING, to_status):
            raise ValueError(f"illegal transition processing -> {to_status}")
        return await self._finishes.submit(
            _Finish(
                payout_id,
                to_status,
                failure_code,
                failure_message,
                reason,
                request_id,
                context_headers(),
            )
        )

    async def _start_all(self, calls: Sequence[_Start]) -> list[Target | None]:
        params = {
            "ids": [c.payout_id for c in calls],
            "request_ids": [c.request_id for c in calls],
            "trace_context": _trace_context(calls),
        }
        async with autocommit(self._engine) as conn:
            rows: Any = (await conn.execute(_START, params)).all()
        found = {
            row.id: Target(
                status=PayoutStatus(row.status),
                deleted=row.deleted_at is not None,
                started=row.started,
                amount=row.amount,
                currency=row.currency,
                account=(row.recipient_details or {}).get("account"),
                created_at=row.created_at,
            )
            for row in rows
        }
        return [found.get(c.payout_id) for c in calls]

    async def _finish_all(self, calls: Sequence[_Finish]) -> list[datetime | None]:
        params = {
            "ids": [c.payout_id for c in calls],
            "to_statuses": [c.to_status.value for c in calls],
            "failure_codes": [c.failure_code for c in calls],
            "failure_messages": [c.failure_message for c in calls],
            "reasons": [c.reason for c in calls],
            "request_ids": [c.request_id for c in calls],
            "trace_context": _trace_context(calls),
        }
        async with autocommit(self._engine) as conn:
            rows: Any = (await conn.execute(_FINISH, params)).all()
        finished = {row.id: row.created_at for row in rows}
        return [finished.get(c.payout_id) for c in calls]

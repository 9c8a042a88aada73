"""What processing reads and writes, so processing.py holds only decisions: the two status
changes of every payout, payout_core.db.transitions' set-based START and FINISH, made for each
payout of a batch (see batching.py) in one round trip and one commit; and, one payout at a
time, the rarer steps: marking a call sent again (payout_core.db.transfer_fence), a call in
doubt, and the give-up's read, flag and fenced failure."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db import attention, transfer_fence
from payout_core.db.engine import autocommit
from payout_core.db.status_trace import setting_value
from payout_core.db.tables import payouts
from payout_core.db.transitions import FINISH, FINISH_PROCESSING, START, transition
from payout_core.domain.failures import failure_message
from payout_core.domain.status import PayoutStatus
from payout_core.tracing import context_headers
from payout_processor.batching import Batcher


@dataclass(frozen=True)
class PayoutToProcess:
    """A payout as processing sees it, after start()."""

    status: PayoutStatus  # as found, before this call moved it
    deleted: bool
    started: bool  # this call moved it pending -> processing
    amount: Decimal
    currency: str
    account: str | None  # None: the stored payout is unusable (it fails alone, not its batch)
    created_at: datetime


@dataclass(frozen=True)
class PayoutToGiveUp:
    """A payout as the give-up finds it (locked, then moved pending -> processing if it was)."""

    status: PayoutStatus  # as found
    in_doubt: bool
    transfer_started_at: datetime | None  # the fence the failing statement requires unchanged
    seconds_since_call_start: float | None


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
        self._starts: Batcher[_Start, PayoutToProcess | None] = Batcher(
            self._start_all, _payout_id, name="start processing"
        )
        self._finishes: Batcher[_Finish, datetime | None] = Batcher(
            self._finish_all, _payout_id, name="finish processing"
        )

    async def start(self, payout_id: uuid.UUID, request_id: str | None) -> PayoutToProcess | None:
        """pending -> processing if it still is; None for an unknown payout."""
        return await self._starts.submit(_Start(payout_id, request_id, context_headers()))

    async def begin_transfer(self, payout_id: uuid.UUID) -> bool:
        """Mark a new call for a payout that start() found already processing; False: it has
        ended since, send nothing. (Rare, a redelivery: not batched.)"""
        async with autocommit(self._engine) as conn:
            return await transfer_fence.begin_transfer(conn, payout_id)

    async def mark_in_doubt(self, payout_id: uuid.UUID) -> None:
        async with self._engine.begin() as conn:
            await attention.mark_in_doubt(conn, payout_id)

    async def take_for_give_up(
        self, payout_id: uuid.UUID, request_id: str | None
    ) -> PayoutToGiveUp | None:
        """The payout (None: unknown), moved pending -> processing if it still was pending."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(
                        payouts.c.status,
                        payouts.c.in_doubt_since,
                        payouts.c.transfer_started_at,
                        transfer_fence.SECONDS_SINCE_CALL_START,
                    )
                    .where(payouts.c.id == payout_id)
                    .with_for_update()
                )
            ).first()
            if row is None:
                return None
            if row.status == PayoutStatus.PENDING.value:
                await transition(
                    conn,
                    payout_id,
                    PayoutStatus.PENDING,
                    PayoutStatus.PROCESSING,
                    reason="processing_started",
                    request_id=request_id,
                )
        since = row.seconds_since_call_start
        return PayoutToGiveUp(
            status=PayoutStatus(row.status),
            in_doubt=row.in_doubt_since is not None,
            transfer_started_at=row.transfer_started_at,
            seconds_since_call_start=None if since is None else float(since),
        )

    async def flag_given_up_in_doubt(self, payout_id: uuid.UUID) -> None:
        async with self._engine.begin() as conn:
            await attention.flag(conn, [payout_id], attention.GIVEN_UP_IN_DOUBT)

    async def fail_given_up(
        self,
        payout_id: uuid.UUID,
        failure_code: str,
        request_id: str | None,
        transfer_started_at: datetime | None,
    ) -> datetime | None:
        """processing -> failed if no call is in doubt and none began since the give-up read
        `transfer_started_at`; the payout's created_at, or None when it was not so."""
        async with self._engine.begin() as conn:
            failed = await transition(
                conn,
                payout_id,
                PayoutStatus.PROCESSING,
                PayoutStatus.FAILED,
                reason=failure_code,
                request_id=request_id,
                guard=sa.and_(
                    payouts.c.in_doubt_since.is_(None),
                    transfer_fence.unchanged_since(transfer_started_at),
                ),
                values={
                    "failure_code": failure_code,
                    "failure_message": failure_message(failure_code),
                    "processed_at": sa.func.now(),
                },
            )
        return None if failed is None else failed["created_at"]

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
        if to_status not in FINISH_PROCESSING.to_statuses:
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

    async def _start_all(self, calls: Sequence[_Start]) -> list[PayoutToProcess | None]:
        params = {
            "ids": [c.payout_id for c in calls],
            "request_ids": [c.request_id for c in calls],
            "trace_context": _trace_context(calls),
        }
        async with autocommit(self._engine) as conn:
            rows: Any = (await conn.execute(START, params)).all()
        found = {
            row.id: PayoutToProcess(
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
            rows: Any = (await conn.execute(FINISH, params)).all()
        finished = {row.id: row.created_at for row in rows}
        return [finished.get(c.payout_id) for c in calls]

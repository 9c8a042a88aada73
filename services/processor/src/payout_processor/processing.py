"""Processing one payout: pending -> processing -> processed | failed, idempotently.

Each step is a conditional update committed on its own; the provider call in between is
idempotent by reference. Any step may be repeated after a crash or a redelivery and the
payout still ends in exactly one terminal status, paid at most once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.tables import payouts
from payout_core.db.transitions import transition
from payout_core.domain.failures import failure_message
from payout_core.domain.status import PayoutStatus
from payout_core.metrics import ProcessorMetrics
from payout_processor.provider import SimulatedProvider
from payout_processor.statements import ProcessingStatements

PROCESSED = "processed"
FAILED = "failed"
SKIPPED = "skipped_duplicate"
UNKNOWN = "unknown_payout"


@dataclass(frozen=True)
class Outcome:
    name: str
    failure_code: str | None = None


class PayoutProcessor:
    def __init__(
        self, engine: AsyncEngine, provider: SimulatedProvider, metrics: ProcessorMetrics
    ) -> None:
        self._engine = engine
        self._provider = provider
        self._metrics = metrics
        self._statements = ProcessingStatements(engine)

    def _count_transition(self, from_status: PayoutStatus, to_status: PayoutStatus) -> None:
        self._metrics.transitions.labels(**{"from": from_status.value, "to": to_status.value}).inc()

    async def process(self, payout_id: uuid.UUID, request_id: str | None) -> Outcome:
        target = await self._statements.start(payout_id, request_id)
        if target is None:
            return Outcome(UNKNOWN)
        if target.started:
            self._count_transition(PayoutStatus.PENDING, PayoutStatus.PROCESSING)
        elif target.deleted or target.status is not PayoutStatus.PROCESSING:
            # Deleted, terminal, or (not moved) still pending: not ours to pay.
            return Outcome(SKIPPED)
        result = await self._provider.execute(
            reference=str(payout_id),
            amount=target.amount,
            currency=target.currency,
            account=target.account,
        )
        return await self.finish(payout_id, result.failure_code, request_id, target.created_at)

    async def finish(
        self,
        payout_id: uuid.UUID,
        failure_code: str | None,
        request_id: str | None,
        created_at: datetime | None = None,
    ) -> Outcome:
        """Record the terminal status; a no-op (skipped) when another worker already did."""
        target = PayoutStatus.FAILED if failure_code else PayoutStatus.PROCESSED
        finished_created_at = await self._statements.finish(
            payout_id,
            target,
            failure_code=failure_code,
            failure_message=failure_message(failure_code) if failure_code else None,
            reason=failure_code or "provider_succeeded",
            request_id=request_id,
        )
        if finished_created_at is None:
            return Outcome(SKIPPED)
        self._count_transition(PayoutStatus.PROCESSING, target)
        started = created_at or finished_created_at
        self._metrics.end_to_end.observe((datetime.now(UTC) - started).total_seconds())
        return Outcome(FAILED if failure_code else PROCESSED, failure_code)

    async def give_up(self, payout_id: uuid.UUID, request_id: str | None) -> Outcome:
        """After the last attempt: fail the payout with processing_error, wherever it stands."""
        async with self._engine.begin() as conn:
            status = (
                await conn.execute(
                    sa.select(payouts.c.status).where(payouts.c.id == payout_id).with_for_update()
                )
            ).scalar()
            if status == PayoutStatus.PENDING.value:
                await transition(
                    conn,
                    payout_id,
                    PayoutStatus.PENDING,
                    PayoutStatus.PROCESSING,
                    reason="processing_started",
                    request_id=request_id,
                )
        if status == PayoutStatus.PENDING.value:
            self._count_transition(PayoutStatus.PENDING, PayoutStatus.PROCESSING)
        elif status != PayoutStatus.PROCESSING.value:
            return Outcome(SKIPPED)
        # If the provider did execute the payout, that result stands; otherwise the reference
        # is closed so that no late retry can pay it after we report it failed.
        result = await self._provider.void(str(payout_id), "processing_error")
        return await self.finish(payout_id, result.failure_code, request_id)

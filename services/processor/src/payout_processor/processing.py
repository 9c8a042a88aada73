"""Processing one payout: pending -> processing -> processed | failed, paid exactly once.

Each step is a conditional update committed on its own; the provider call in between carries
the payout id as its idempotency key. Only the provider's definite answers end a payout: an
executed transfer -> processed, a declined one -> failed with its code. An answer in doubt
(timeout, reset, 5xx) leaves the payout processing and raises, so the consumer retries it
later; any call for a payout that is already processing looks the transfer up first, so a
payout is never sent again once the provider knows it, even after the key's retention window.
Every call's start is marked first, and a give-up never fails a payout while a call may be
open (payout_core.db.transfer_fence).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from payout_core.db import transfer_fence
from payout_core.domain.failures import failure_message
from payout_core.domain.status import PayoutStatus
from payout_core.metrics import ProcessorMetrics
from payout_core.provider_client import ProviderClient, ProviderInDoubt, ProviderUnreachable
from payout_core.provider_client import Transfer as ProviderAnswer
from payout_processor.statements import ProcessingStatements

# What became of a message (Outcome.name: the payout_messages_total label, the log event).
ENDED_PROCESSED = "processed"
ENDED_FAILED = "failed"
SKIPPED = "skipped_duplicate"
UNKNOWN = "unknown_payout"
FLAGGED = "flagged"
# The failure code of a payout given up with no answer from the provider.
GIVEN_UP_FAILURE_CODE = "processing_error"


class CallMayBeInFlight(Exception):
    """The give-up cannot decide yet: a transfer call for the payout may still be open (or
    one began while it looked). Try it again later."""


@dataclass(frozen=True)
class Outcome:
    name: str
    failure_code: str | None = None


class PayoutProcessor:
    def __init__(
        self,
        statements: ProcessingStatements,
        provider: ProviderClient,
        metrics: ProcessorMetrics,
    ) -> None:
        self._statements = statements
        self._provider = provider
        self._metrics = metrics

    def _count_transition(self, from_status: PayoutStatus, to_status: PayoutStatus) -> None:
        self._metrics.transitions.labels(**{"from": from_status.value, "to": to_status.value}).inc()

    async def process(self, payout_id: uuid.UUID, request_id: str | None) -> Outcome:
        payout = await self._statements.start(payout_id, request_id)
        if payout is None:
            return Outcome(UNKNOWN)
        if payout.started:
            self._count_transition(PayoutStatus.PENDING, PayoutStatus.PROCESSING)
        elif payout.deleted or payout.status is not PayoutStatus.PROCESSING:
            # Deleted, terminal, or (not moved) still pending: not ours to pay.
            return Outcome(SKIPPED)
        if payout.account is None:
            raise ValueError(f"payout {payout_id} has no recipient account")
        reference = str(payout_id)
        if not payout.started:
            # Sent before (a redelivery, a retry, a crash): the provider may have executed it.
            known = await self._provider.lookup(reference)
            if known is not None:
                return await self.finish(payout_id, known, request_id, payout.created_at)
            if not await self._statements.begin_transfer(payout_id):
                return Outcome(SKIPPED)  # ended since start() read it: a give-up, a lookup
        try:
            answer = await self._provider.transfer(
                reference, payout.amount, payout.currency, payout.account
            )
        except ProviderUnreachable:
            raise
        except ProviderInDoubt:
            await self._statements.mark_in_doubt(payout_id)
            raise
        return await self.finish(payout_id, answer, request_id, payout.created_at)

    async def finish(
        self,
        payout_id: uuid.UUID,
        answer: ProviderAnswer,
        request_id: str | None,
        created_at: datetime | None = None,
    ) -> Outcome:
        """Record the provider's definite answer; a no-op (skipped) when another worker did."""
        failure_code = answer.payout_failure_code
        to_status = PayoutStatus.FAILED if failure_code else PayoutStatus.PROCESSED
        finished_created_at = await self._statements.finish(
            payout_id,
            to_status,
            failure_code=failure_code,
            failure_message=failure_message(failure_code) if failure_code else None,
            reason=failure_code or "provider_succeeded",
            request_id=request_id,
        )
        if finished_created_at is None:
            return Outcome(SKIPPED)
        return self._ended(to_status, failure_code, created_at or finished_created_at)

    def _ended(
        self, to_status: PayoutStatus, failure_code: str | None, created_at: datetime
    ) -> Outcome:
        self._count_transition(PayoutStatus.PROCESSING, to_status)
        self._metrics.end_to_end.observe((datetime.now(UTC) - created_at).total_seconds())
        return Outcome(ENDED_FAILED if failure_code else ENDED_PROCESSED, failure_code)

    async def give_up(self, payout_id: uuid.UUID, request_id: str | None) -> Outcome:
        """After the last attempt (errors of our own, never the provider's): the provider's
        record decides. Executed or declined there -> that; unknown there -> processing_error,
        unless a call is in doubt (it may still land): then the payout is flagged, not failed.
        Raises CallMayBeInFlight while a call may still be open: nothing is decided then."""
        payout = await self._statements.take_for_give_up(payout_id, request_id)
        if payout is None:
            return Outcome(UNKNOWN)
        if payout.status is PayoutStatus.PENDING:
            self._count_transition(PayoutStatus.PENDING, PayoutStatus.PROCESSING)
        elif payout.status is not PayoutStatus.PROCESSING:
            return Outcome(SKIPPED)
        since = payout.seconds_since_call_start
        if transfer_fence.call_may_be_in_flight(since, self._provider.timeout_s):
            raise CallMayBeInFlight(f"a transfer call began {since:.1f} s ago")
        known = await self._provider.lookup(str(payout_id))
        if known is not None:
            return await self.finish(payout_id, known, request_id)
        if payout.in_doubt:
            await self._statements.flag_given_up_in_doubt(payout_id)
            return Outcome(FLAGGED)
        created_at = await self._statements.fail_given_up(
            payout_id, GIVEN_UP_FAILURE_CODE, request_id, payout.transfer_started_at
        )
        if created_at is None:  # a call began, or one went in doubt, while it looked
            raise CallMayBeInFlight("the payout changed while the give-up looked it up")
        return self._ended(PayoutStatus.FAILED, GIVEN_UP_FAILURE_CODE, created_at)

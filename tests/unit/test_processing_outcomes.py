"""One payout's processing decided against fakes of its statements and the provider: what is
sent, what is looked up first, and the outcome. No PostgreSQL, no provider."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from payout_core.db.transfer_fence import CALL_START_GRACE_S
from payout_core.domain.status import PayoutStatus
from payout_core.metrics import ProcessorMetrics
from payout_core.provider_client import ProviderInDoubt, ProviderUnreachable, Transfer
from payout_processor.processing import (
    ENDED_FAILED,
    ENDED_PROCESSED,
    FLAGGED,
    GIVEN_UP_FAILURE_CODE,
    SKIPPED,
    UNKNOWN,
    CallMayBeInFlight,
    PayoutProcessor,
)
from payout_processor.statements import PayoutToGiveUp, PayoutToProcess

PAYOUT = uuid.UUID(int=9)
CREATED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def payout(status: PayoutStatus, *, started: bool, deleted: bool = False) -> PayoutToProcess:
    return PayoutToProcess(
        status=status,
        deleted=deleted,
        started=started,
        amount=Decimal("10.00"),
        currency="EUR",
        account="DE89370400440532013000",
        created_at=CREATED_AT,
    )


class FakeStatements:
    def __init__(self, found: PayoutToProcess | None = None, still_processing: bool = True) -> None:
        self.found = found  # what start finds
        self.still_processing = still_processing  # what begin_transfer finds
        self.finished: list[tuple[PayoutStatus, str | None]] = []
        self.giving_up: PayoutToGiveUp | None = None  # what take_for_give_up finds
        self.fence_holds = True  # no call began, none went in doubt, while the give-up looked
        self.written: list[str] = []  # the give-up's and in-doubt steps, in order

    async def begin_transfer(self, payout_id: uuid.UUID) -> bool:
        return self.still_processing

    async def mark_in_doubt(self, payout_id: uuid.UUID) -> None:
        self.written.append("in_doubt")

    async def take_for_give_up(
        self, payout_id: uuid.UUID, request_id: str | None
    ) -> PayoutToGiveUp | None:
        return self.giving_up

    async def flag_given_up_in_doubt(self, payout_id: uuid.UUID) -> None:
        self.written.append("flagged")

    async def fail_given_up(
        self,
        payout_id: uuid.UUID,
        failure_code: str,
        request_id: str | None,
        transfer_started_at: datetime | None,
    ) -> datetime | None:
        self.written.append(f"failed {failure_code} fenced at {transfer_started_at}")
        return CREATED_AT if self.fence_holds else None

    async def start(self, payout_id: uuid.UUID, request_id: str | None) -> PayoutToProcess | None:
        return self.found

    async def finish(
        self, payout_id: uuid.UUID, to_status: PayoutStatus, **kw: Any
    ) -> datetime | None:
        self.finished.append((to_status, kw["failure_code"]))
        return CREATED_AT


class FakeProvider:
    timeout_s = 10.0

    def __init__(self, answer: Transfer | Exception, known: Transfer | None = None) -> None:
        self.answer = answer
        self.known = known
        self.sent = 0
        self.looked_up = 0

    async def lookup(self, reference: str) -> Transfer | None:
        self.looked_up += 1
        return self.known

    async def transfer(self, *args: Any) -> Transfer:
        self.sent += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def processor_for(provider: FakeProvider, statements: FakeStatements) -> PayoutProcessor:
    return PayoutProcessor(
        statements,  # type: ignore[arg-type]  # a fake
        provider,  # type: ignore[arg-type]  # a fake
        ProcessorMetrics(),
    )


async def test_a_payout_just_started_is_sent_once_and_processed():
    statements = FakeStatements(payout(PayoutStatus.PENDING, started=True))
    provider = FakeProvider(Transfer("executed"))
    outcome = await processor_for(provider, statements).process(PAYOUT, "r")
    assert (outcome.name, outcome.failure_code) == (ENDED_PROCESSED, None)
    assert (provider.sent, provider.looked_up) == (1, 0)


async def test_a_declined_transfer_fails_the_payout_with_its_code():
    statements = FakeStatements(payout(PayoutStatus.PENDING, started=True))
    provider = FakeProvider(Transfer("declined", "insufficient_funds"))
    processor = processor_for(provider, statements)
    outcome = await processor.process(PAYOUT, "r")
    assert (outcome.name, outcome.failure_code) == (ENDED_FAILED, "insufficient_funds")


async def test_a_payout_already_processing_is_looked_up_before_it_is_sent_again():
    statements = FakeStatements(payout(PayoutStatus.PROCESSING, started=False))
    provider = FakeProvider(Transfer("executed"), known=Transfer("executed"))
    outcome = await processor_for(provider, statements).process(PAYOUT, "r")
    assert outcome.name == ENDED_PROCESSED and (provider.looked_up, provider.sent) == (1, 0)


@pytest.mark.parametrize(
    ("still_processing", "outcome", "sent"), [(True, ENDED_PROCESSED, 1), (False, SKIPPED, 0)]
)
async def test_a_payout_processing_and_unknown_to_the_provider_is_sent_again_only_if_it_still_is(
    still_processing: bool, outcome: str, sent: int
):
    """Its call is marked first (the give-up's fence); a payout that ended since is not sent."""
    statements = FakeStatements(payout(PayoutStatus.PROCESSING, started=False), still_processing)
    provider = FakeProvider(Transfer("executed"), known=None)
    assert (await processor_for(provider, statements).process(PAYOUT, "r")).name == outcome
    assert (provider.looked_up, provider.sent) == (1, sent)


@pytest.mark.parametrize(
    "found_target",
    [
        payout(PayoutStatus.PROCESSED, started=False),
        payout(PayoutStatus.CANCELLED, started=False),
        payout(PayoutStatus.PROCESSING, started=False, deleted=True),
    ],
)
async def test_a_payout_not_ours_to_pay_is_skipped_unsent(found_target: PayoutToProcess):
    provider = FakeProvider(Transfer("executed"))
    outcome = await processor_for(provider, FakeStatements(found_target)).process(PAYOUT, "r")
    assert outcome.name == SKIPPED and provider.sent == 0


async def test_an_unknown_payout_is_unknown():
    processor = processor_for(FakeProvider(Transfer("executed")), FakeStatements(None))
    assert (await processor.process(PAYOUT, "r")).name == UNKNOWN


async def test_an_unreachable_provider_raises_for_a_later_attempt():
    statements = FakeStatements(payout(PayoutStatus.PENDING, started=True))
    with pytest.raises(ProviderUnreachable):
        await processor_for(FakeProvider(ProviderUnreachable("refused")), statements).process(
            PAYOUT, "r"
        )


async def test_an_answer_in_doubt_marks_the_payout_and_raises_for_a_later_attempt():
    statements = FakeStatements(payout(PayoutStatus.PENDING, started=True))
    with pytest.raises(ProviderInDoubt):
        await processor_for(FakeProvider(ProviderInDoubt("timeout")), statements).process(
            PAYOUT, "r"
        )
    assert statements.written == ["in_doubt"] and statements.finished == []


# The give-up: after the last attempt, with a call's start marked LAST_CALL ago.
LAST_CALL = datetime(2026, 1, 1, 12, tzinfo=UTC)
LONG_AGO = FakeProvider.timeout_s + CALL_START_GRACE_S + 1


def giving_up(
    status: PayoutStatus = PayoutStatus.PROCESSING,
    *,
    since: float | None = LONG_AGO,
    in_doubt: bool = False,
    fence_holds: bool = True,
) -> FakeStatements:
    statements = FakeStatements()
    statements.giving_up = PayoutToGiveUp(status, in_doubt, LAST_CALL, since)
    statements.fence_holds = fence_holds
    return statements


@pytest.mark.parametrize("since", [0.0, FakeProvider.timeout_s + CALL_START_GRACE_S - 0.1])
async def test_a_give_up_decides_nothing_while_a_call_may_be_open(since: float):
    statements = giving_up(since=since)
    provider = FakeProvider(Transfer("executed"))
    with pytest.raises(CallMayBeInFlight):
        await processor_for(provider, statements).give_up(PAYOUT, "r")
    assert provider.looked_up == 0 and statements.written == [] and statements.finished == []


@pytest.mark.parametrize(
    ("known", "ended"),
    [
        (Transfer("executed"), (PayoutStatus.PROCESSED, None)),
        (Transfer("declined", "insufficient_funds"), (PayoutStatus.FAILED, "insufficient_funds")),
    ],
)
async def test_a_give_up_ends_the_payout_as_the_providers_record_says(
    known: Transfer, ended: tuple[PayoutStatus, str | None]
):
    statements = giving_up(in_doubt=True)
    await processor_for(FakeProvider(Transfer("executed"), known=known), statements).give_up(
        PAYOUT, "r"
    )
    assert statements.finished == [ended] and statements.written == []


async def test_a_give_up_flags_a_payout_in_doubt_that_the_provider_does_not_know():
    statements = giving_up(in_doubt=True)
    outcome = await processor_for(FakeProvider(Transfer("executed")), statements).give_up(
        PAYOUT, "r"
    )
    assert outcome.name == FLAGGED and statements.written == ["flagged"]


@pytest.mark.parametrize(
    ("status", "since"),
    [
        (PayoutStatus.PENDING, None),  # never started: the give-up moved it to processing
        (PayoutStatus.PROCESSING, None),  # never called
        (PayoutStatus.PROCESSING, LONG_AGO),  # its last call long over
    ],
)
async def test_a_give_up_fails_a_payout_unknown_to_the_provider_fenced_at_what_it_read(
    status: PayoutStatus, since: float | None
):
    statements = giving_up(status, since=since)
    outcome = await processor_for(FakeProvider(Transfer("executed")), statements).give_up(
        PAYOUT, "r"
    )
    assert (outcome.name, outcome.failure_code) == (ENDED_FAILED, GIVEN_UP_FAILURE_CODE)
    assert statements.written == [f"failed {GIVEN_UP_FAILURE_CODE} fenced at {LAST_CALL}"]


async def test_a_give_up_whose_fence_moved_decides_nothing():
    statements = giving_up(fence_holds=False)
    with pytest.raises(CallMayBeInFlight):
        await processor_for(FakeProvider(Transfer("executed")), statements).give_up(PAYOUT, "r")


@pytest.mark.parametrize(
    ("found_state", "outcome"),
    [(None, UNKNOWN), (PayoutStatus.PROCESSED, SKIPPED), (PayoutStatus.CANCELLED, SKIPPED)],
)
async def test_a_give_up_of_a_payout_unknown_or_ended_does_nothing(
    found_state: PayoutStatus | None, outcome: str
):
    statements = giving_up(found_state) if found_state else FakeStatements()
    provider = FakeProvider(Transfer("executed"))
    assert (await processor_for(provider, statements).give_up(PAYOUT, "r")).name == outcome
    assert provider.looked_up == 0 and statements.written == []

"""One payout's processing decided against fakes of its statements and the provider: what is
sent, what is looked up first, and the outcome. No PostgreSQL, no provider."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from payout_core.domain.status import PayoutStatus
from payout_core.metrics import ProcessorMetrics
from payout_core.provider_client import ProviderUnreachable, Transfer
from payout_processor import processing
from payout_processor.processing import (
    ENDED_FAILED,
    ENDED_PROCESSED,
    SKIPPED,
    UNKNOWN,
    PayoutProcessor,
)
from payout_processor.statements import PayoutToProcess

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
    found: PayoutToProcess | None = None

    still_processing = True  # what begin_transfer finds

    def __init__(self, _engine: object) -> None:
        self.finished: list[tuple[PayoutStatus, str | None]] = []

    async def begin_transfer(self, payout_id: uuid.UUID) -> bool:
        return self.still_processing

    async def start(self, payout_id: uuid.UUID, request_id: str | None) -> PayoutToProcess | None:
        return self.found

    async def finish(
        self, payout_id: uuid.UUID, to_status: PayoutStatus, **kw: Any
    ) -> datetime | None:
        self.finished.append((to_status, kw["failure_code"]))
        return CREATED_AT


class FakeProvider:
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


@pytest.fixture
def found(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(processing, "ProcessingStatements", FakeStatements)

    def set_found(value: PayoutToProcess | None) -> None:
        monkeypatch.setattr(FakeStatements, "found", value)

    return set_found


def processor_for(provider: FakeProvider) -> PayoutProcessor:
    return PayoutProcessor(None, provider, ProcessorMetrics())  # type: ignore[arg-type]  # fakes


async def test_a_payout_just_started_is_sent_once_and_processed(found):
    found(payout(PayoutStatus.PENDING, started=True))
    provider = FakeProvider(Transfer("executed"))
    outcome = await processor_for(provider).process(PAYOUT, "r")
    assert (outcome.name, outcome.failure_code) == (ENDED_PROCESSED, None)
    assert (provider.sent, provider.looked_up) == (1, 0)


async def test_a_declined_transfer_fails_the_payout_with_its_code(found):
    found(payout(PayoutStatus.PENDING, started=True))
    provider = FakeProvider(Transfer("declined", "insufficient_funds"))
    processor = processor_for(provider)
    outcome = await processor.process(PAYOUT, "r")
    assert (outcome.name, outcome.failure_code) == (ENDED_FAILED, "insufficient_funds")


async def test_a_payout_already_processing_is_looked_up_before_it_is_sent_again(found):
    found(payout(PayoutStatus.PROCESSING, started=False))
    provider = FakeProvider(Transfer("executed"), known=Transfer("executed"))
    outcome = await processor_for(provider).process(PAYOUT, "r")
    assert outcome.name == ENDED_PROCESSED and (provider.looked_up, provider.sent) == (1, 0)


@pytest.mark.parametrize(
    ("still_processing", "outcome", "sent"), [(True, ENDED_PROCESSED, 1), (False, SKIPPED, 0)]
)
async def test_a_payout_processing_and_unknown_to_the_provider_is_sent_again_only_if_it_still_is(
    found, monkeypatch: pytest.MonkeyPatch, still_processing: bool, outcome: str, sent: int
):
    """Its call is marked first (the give-up's fence); a payout that ended since is not sent."""
    found(payout(PayoutStatus.PROCESSING, started=False))
    monkeypatch.setattr(FakeStatements, "still_processing", still_processing)
    provider = FakeProvider(Transfer("executed"), known=None)
    assert (await processor_for(provider).process(PAYOUT, "r")).name == outcome
    assert (provider.looked_up, provider.sent) == (1, sent)


@pytest.mark.parametrize(
    "found_target",
    [
        payout(PayoutStatus.PROCESSED, started=False),
        payout(PayoutStatus.CANCELLED, started=False),
        payout(PayoutStatus.PROCESSING, started=False, deleted=True),
    ],
)
async def test_a_payout_not_ours_to_pay_is_skipped_unsent(found, found_target: PayoutToProcess):
    found(found_target)
    provider = FakeProvider(Transfer("executed"))
    outcome = await processor_for(provider).process(PAYOUT, "r")
    assert outcome.name == SKIPPED and provider.sent == 0


async def test_an_unknown_payout_is_unknown(found):
    found(None)
    assert (await processor_for(FakeProvider(Transfer("executed"))).process(PAYOUT, "r")).name == (
        UNKNOWN
    )


async def test_an_unreachable_provider_raises_for_a_later_attempt(found):
    found(payout(PayoutStatus.PENDING, started=True))
    with pytest.raises(ProviderUnreachable):
        await processor_for(FakeProvider(ProviderUnreachable("refused"))).process(PAYOUT, "r")

"""What the processor's consumer does with a message, by the processing's outcome or error:
ack, retry through a delay queue, defer an outage, give up, dead-letter. Fakes only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from payout_core.messaging.broker import OutgoingMessage
from payout_core.messaging.contracts import (
    HEADER_ATTEMPT,
    PayoutCreated,
    retry_delays_ms,
    retry_queue_name,
)
from payout_core.metrics import ProcessorMetrics
from payout_core.provider_client import ProviderInDoubt
from payout_processor.consumer import HEADER_DEFERRALS, PayoutConsumer
from payout_processor.processing import ENDED_PROCESSED, UNKNOWN, CallMayBeInFlight, Outcome

MAX_ATTEMPTS = 3
BASE_MS = 100
DELAYS = retry_delays_ms(BASE_MS, MAX_ATTEMPTS)
PAYOUT = uuid.UUID(int=7)
GIVEN_UP = Outcome("processing_error")


class FakeMessage:
    def __init__(self, body: bytes, attempt: int | None = None) -> None:
        self.body = body
        self.headers: dict[str, Any] = {} if attempt is None else {HEADER_ATTEMPT: str(attempt)}
        self.message_id = str(PAYOUT)
        self.routing_key = "payout.created"
        self.redelivered = False
        self.settled: list[str] = []

    async def ack(self) -> None:
        self.settled.append("ack")

    async def reject(self, requeue: bool = False) -> None:
        self.settled.append("requeue" if requeue else "reject")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append("requeue" if requeue else "reject")


class FakeBroker:
    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.published: list[OutgoingMessage] = []

    async def publish_batch(self, messages: list[OutgoingMessage]) -> None:
        if self.fails:
            raise ConnectionError("broker away")
        self.published.extend(messages)


class FakeProcessor:
    def __init__(self, result: Outcome | Exception, give_up: Outcome | Exception) -> None:
        self.result = result
        self.give_up_result = give_up
        self.gave_up = False

    async def process(self, payout_id: uuid.UUID, request_id: str | None) -> Outcome:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    async def give_up(self, payout_id: uuid.UUID, request_id: str | None) -> Outcome:
        self.gave_up = True
        if isinstance(self.give_up_result, Exception):
            raise self.give_up_result
        return self.give_up_result


async def handle(
    result: Outcome | Exception,
    *,
    attempt: int | None = None,
    give_up: Outcome | Exception = GIVEN_UP,
    broker: FakeBroker | None = None,
    body: bytes | None = None,
) -> tuple[FakeMessage, FakeBroker, FakeProcessor]:
    broker = broker or FakeBroker()
    processor = FakeProcessor(result, give_up)
    consumer = PayoutConsumer(
        broker,  # type: ignore[arg-type]  # a fake
        processor,  # type: ignore[arg-type]  # a fake
        ProcessorMetrics(),
        concurrency=1,
        prefetch=1,
        max_attempts=MAX_ATTEMPTS,
        retry_base_ms=BASE_MS,
    )
    created = PayoutCreated(PAYOUT, datetime(2026, 1, 1, tzinfo=UTC)).to_body()
    message = FakeMessage(created if body is None else body, attempt)
    await consumer.on_message(message)  # type: ignore[arg-type]  # a fake
    return message, broker, processor


def delayed(broker: FakeBroker) -> list[tuple[str, str, str]]:
    return [
        (m.routing_key, m.headers[HEADER_ATTEMPT], m.headers[HEADER_DEFERRALS])
        for m in broker.published
    ]


async def test_a_processed_payout_is_acked():
    message, broker, _ = await handle(Outcome(ENDED_PROCESSED))
    assert message.settled == ["ack"] and broker.published == []


@pytest.mark.parametrize("body", [b"not json", b'{"payout_id": "nope"}'])
async def test_a_malformed_message_is_dead_lettered_at_once(body: bytes):
    message, _, processor = await handle(Outcome(ENDED_PROCESSED), body=body)
    assert message.settled == ["reject"] and not processor.gave_up


async def test_a_message_for_an_unknown_payout_is_dead_lettered():
    message, _, _ = await handle(Outcome(UNKNOWN))
    assert message.settled == ["reject"]


@pytest.mark.parametrize("outage", [ProviderInDoubt("timeout"), OSError("database refused")])
async def test_an_outage_defers_without_using_an_attempt(outage: Exception):
    message, broker, _ = await handle(outage, attempt=2)
    assert delayed(broker) == [(retry_queue_name(DELAYS[0]), "2", "1")]
    assert message.settled == ["ack"]


async def test_an_error_of_ours_retries_as_the_next_attempt():
    message, broker, _ = await handle(ValueError("bug"), attempt=1)
    assert delayed(broker) == [(retry_queue_name(DELAYS[0]), "2", "0")]
    assert message.settled == ["ack"]


async def test_after_the_last_attempt_the_give_up_decides_and_the_message_is_dead_lettered():
    message, broker, processor = await handle(ValueError("bug"), attempt=MAX_ATTEMPTS)
    assert processor.gave_up and broker.published == []
    assert message.settled == ["reject"]


@pytest.mark.parametrize(
    "undecided", [OSError("database refused"), CallMayBeInFlight("a call began 0.5 s ago")]
)
async def test_a_give_up_not_recorded_or_not_decided_waits_the_longest_delay_for_itself(
    undecided: Exception,
):
    message, broker, _ = await handle(ValueError("bug"), attempt=MAX_ATTEMPTS, give_up=undecided)
    assert delayed(broker) == [(retry_queue_name(DELAYS[-1]), str(MAX_ATTEMPTS + 1), "0")]
    assert message.settled == ["ack"]


async def test_a_retry_that_cannot_be_published_goes_back_to_the_queue():
    message, _, _ = await handle(ValueError("bug"), attempt=1, broker=FakeBroker(fails=True))
    assert message.settled == ["requeue"]

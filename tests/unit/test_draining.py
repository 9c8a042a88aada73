"""Stopping a consumer (payout_processor.draining): against a fake queue, no RabbitMQ."""

from __future__ import annotations

import asyncio

import structlog

from payout_processor.draining import InFlight, drain
from tests.support.polling import eventually


class FakeChannel:
    def __init__(self, events: list[str]) -> None:
        self._events = events

    async def close(self) -> None:
        self._events.append("channel closed")


class FakeQueue:
    def __init__(self, events: list[str]) -> None:
        self._events = events
        self.channel = FakeChannel(events)

    async def cancel(self, tag: str) -> None:
        self._events.append(f"cancelled {tag}")


async def test_in_flight_messages_finish_before_the_channel_closes():
    events: list[str] = []
    in_flight = InFlight()
    release = asyncio.Event()

    async def handle() -> None:
        with in_flight.handling():
            await release.wait()
            events.append("message done")

    task = asyncio.create_task(handle())
    await asyncio.sleep(0)  # the message is being handled
    assert in_flight.count == 1
    stopping = asyncio.create_task(drain(FakeQueue(events), "ctag", in_flight, 5, consumer="t"))

    async def cancelled() -> bool:
        return bool(events)

    await eventually(cancelled, timeout=2, what="the consumer cancelled")
    assert events == ["cancelled ctag"]  # no new messages; the channel stays open meanwhile
    release.set()
    await asyncio.gather(task, stopping)
    assert events == ["cancelled ctag", "message done", "channel closed"]
    assert in_flight.count == 0


async def test_after_the_grace_period_the_channel_closes_with_the_message_unfinished():
    events: list[str] = []
    in_flight = InFlight()
    never = asyncio.Event()

    async def handle() -> None:
        with in_flight.handling():
            await never.wait()

    task = asyncio.create_task(handle())
    await asyncio.sleep(0)
    with structlog.testing.capture_logs() as logs:
        await drain(FakeQueue(events), "ctag", in_flight, 0.05, consumer="t")
    assert events == ["cancelled ctag", "channel closed"]  # unacked: back to the queue
    assert [(e["event"], e["inflight"]) for e in logs] == [("shutdown_grace_expired", 1)]
    task.cancel()


class SilentQueue(FakeQueue):
    """A queue whose broker never answers (its connection half gone)."""

    async def cancel(self, tag: str) -> None:
        await asyncio.Event().wait()


async def test_a_broker_that_never_answers_does_not_hold_the_exit(monkeypatch):
    monkeypatch.setattr("payout_processor.draining.BROKER_STEP_TIMEOUT_S", 0.05)
    events: list[str] = []
    await asyncio.wait_for(
        drain(SilentQueue(events), "tag", InFlight(), 1.0, consumer="payouts"),  # type: ignore[arg-type]
        timeout=2,
    )
    assert events == ["channel closed"]

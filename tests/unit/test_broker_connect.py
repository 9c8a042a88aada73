"""The broker's first connection is retried whatever a lost connection raises on the way
(aio-pika's RuntimeError for a closed channel, aiormq cancelling the calls in flight), and
ends only when the process itself cancels it. Fakes only."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from payout_core.messaging.broker import Broker


class FakeConnection:
    node = "fake:5672"


async def test_a_lost_connection_while_opening_is_retried(monkeypatch):
    failures: list[BaseException] = [
        RuntimeError("Can't initialize closed channel"),
        asyncio.CancelledError(),
        ConnectionResetError(),
    ]
    opened = (FakeConnection(), object())

    async def open_once_the_failures_are_used_up(_self: Any) -> Any:
        if failures:
            raise failures.pop(0)
        return opened

    monkeypatch.setattr(Broker, "_open", open_once_the_failures_are_used_up)
    broker = Broker("amqp://guest:guest@127.0.0.1:1/")
    await asyncio.wait_for(broker._connect_forever(), timeout=5)
    assert failures == []
    assert broker.connection is opened[0]


async def test_cancelling_the_connecting_task_ends_it(monkeypatch):
    attempts = 0
    opening = asyncio.Event()

    async def never_opens(_self: Any) -> Any:
        nonlocal attempts
        attempts += 1
        opening.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(Broker, "_open", never_opens)
    broker = Broker("amqp://guest:guest@127.0.0.1:1/")
    broker.start()
    await opening.wait()
    broker._task.cancel()  # type: ignore[union-attr]
    with pytest.raises(asyncio.CancelledError):
        await broker._task  # type: ignore[misc]
    assert attempts == 1

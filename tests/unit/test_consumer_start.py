"""Starting a consumer while the broker comes and goes (payout_processor.wiring): a start
that fails because the connection was lost is tried again; any other error is raised."""

from __future__ import annotations

import asyncio

import pytest

from payout_processor.wiring import start_when_connected


def failing_start(*errors: BaseException):
    calls: list[int] = []

    async def start() -> None:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]

    return start, calls


@pytest.mark.parametrize(
    "lost",
    [
        RuntimeError("Can't initialize closed channel"),  # aio-pika, channel closed under it
        ConnectionResetError(),
        TimeoutError(),
        asyncio.CancelledError(),  # aiormq cancels the calls in flight on a lost connection
    ],
    ids=type,
)
async def test_a_start_cut_short_by_a_lost_connection_is_tried_again(lost: BaseException):
    start, calls = failing_start(lost, lost)
    await start_when_connected(start, "payouts")
    assert len(calls) == 3


async def test_any_other_error_is_raised():
    start, calls = failing_start(ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        await start_when_connected(start, "payouts")
    assert len(calls) == 1


async def test_cancelling_the_start_itself_ends_it():
    started = asyncio.Event()

    async def start() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(start_when_connected(start, "payouts"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

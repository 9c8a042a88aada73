"""What the processor's two consumers (payouts, webhook deliveries) share about stopping:
count the messages being handled, and on SIGTERM stop taking new ones, let those finish
within the grace period, then close the channel, which returns any still unacked."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from aio_pika.abc import AbstractQueue

from payout_core.logging import get_logger
from payout_core.messaging.broker import CLOSE_TIMEOUT_S

log = get_logger(__name__)
# A cancel or close the broker never answers must not hold the exit.
BROKER_STEP_TIMEOUT_S = CLOSE_TIMEOUT_S


class InFlight:
    """The messages being handled now, and whether there are none."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        self.count += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """True once none is in flight; False if some still are after timeout_s."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


async def drain(
    queue: AbstractQueue | None,
    consumer_tag: str | None,
    in_flight: InFlight,
    grace_s: float,
    *,
    consumer: str,
) -> None:
    """Cancel the consumer, wait for its in-flight messages up to grace_s, close its channel
    (unacked messages return to the queue)."""
    # Each step bounded and its failure ignored: with the broker gone (or its channel half
    # closed) the process must still exit, and the broker requeues whatever is unacked.
    if queue is not None and consumer_tag is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(queue.cancel(consumer_tag), BROKER_STEP_TIMEOUT_S)
    if not await in_flight.wait_idle(grace_s):
        log.warning("shutdown_grace_expired", consumer=consumer, inflight=in_flight.count)
    if queue is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(queue.channel.close(), BROKER_STEP_TIMEOUT_S)

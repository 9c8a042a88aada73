"""The channel each of the processor's consumers opens for itself when it starts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aio_pika.abc import AbstractRobustChannel

from payout_core.messaging.broker import CLOSE_TIMEOUT_S, Broker


@contextlib.asynccontextmanager
async def consumer_channel(broker: Broker, prefetch: int) -> AsyncIterator[AbstractRobustChannel]:
    """A channel with its prefetch, once the broker is connected. Closed again if what the
    consumer sets up on it fails: a start retried after the broker went away meanwhile must
    not leave a channel behind (the robust connection would restore it on every reconnect)."""
    await broker.wait_ready()
    channel = await broker.connection.channel(publisher_confirms=False)
    try:
        await channel.set_qos(prefetch_count=prefetch)
        yield channel
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(channel.close(), CLOSE_TIMEOUT_S)
        raise

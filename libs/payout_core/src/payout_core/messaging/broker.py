"""A RabbitMQ connection that comes up in the background and publishes with confirms.

The services must start (and stay up) while the broker is away: the first connect is retried
with backoff, after which aio-pika's robust connection restores itself and its channels.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection

from payout_core.logging import get_logger
from payout_core.messaging.topology import Topology, declare_topology

log = get_logger(__name__)


@dataclass(frozen=True)
class OutgoingMessage:
    routing_key: str
    body: bytes
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)
    exchange: str | None = None  # None: the payouts exchange; "": the default exchange


class BrokerUnavailable(ConnectionError):
    """The broker is not connected right now."""


class Broker:
    def __init__(
        self,
        url: str,
        *,
        retry_base_ms: int = 1000,
        max_attempts: int = 5,
        connect_backoff_max_s: float = 5.0,
    ) -> None:
        self._url = url
        self._retry_base_ms = retry_base_ms
        self._max_attempts = max_attempts
        self._backoff_max = connect_backoff_max_s
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._topology: Topology | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise BrokerUnavailable("not connected to RabbitMQ yet")
        return self._connection

    @property
    def topology(self) -> Topology:
        if self._topology is None:
            raise BrokerUnavailable("not connected to RabbitMQ yet")
        return self._topology

    @property
    def is_ready(self) -> bool:
        conn = self._connection
        return self._ready.is_set() and conn is not None and conn.connected.is_set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever(), name="broker-connect")

    async def wait_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def _connect_forever(self) -> None:
        delay = 0.1
        while True:
            try:
                connection = await aio_pika.connect_robust(self._url, timeout=5)
                channel = await connection.channel(publisher_confirms=True)
                topology = await declare_topology(
                    channel, retry_base_ms=self._retry_base_ms, max_attempts=self._max_attempts
                )
            except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
                log.warning("broker_connect_failed", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            self._connection, self._channel, self._topology = connection, channel, topology
            self._ready.set()
            log.info("broker_connected")
            return

    async def publish_batch(self, messages: Sequence[OutgoingMessage], timeout: float = 10) -> None:
        """Publish persistently and wait for every confirm; the confirms are in flight together.

        Raises on any failure: the caller keeps its rows unpublished and tries again.
        """
        if not self.is_ready or self._channel is None:
            raise BrokerUnavailable("RabbitMQ is not connected")
        channel = self._channel
        default_exchange = channel.default_exchange
        exchange = self.topology.exchange

        async def publish(msg: OutgoingMessage) -> None:
            target = default_exchange if msg.exchange == "" else exchange
            await target.publish(
                aio_pika.Message(
                    msg.body,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=msg.message_id,
                    headers=dict(msg.headers),
                ),
                routing_key=msg.routing_key,
                timeout=timeout,
            )

        results = await asyncio.gather(*(publish(m) for m in messages), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise BrokerUnavailable(f"{len(errors)} of {len(messages)} publishes failed") from (
                errors[0]
            )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            await self._connection.close()

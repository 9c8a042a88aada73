"""A RabbitMQ connection that comes up in the background and publishes with confirms.

The services must start (and stay up) while the broker is away: the first connect is retried
with backoff, after which aio-pika's robust connection restores itself and its channels (with
backoff too, see BackoffRobustConnection). AMQP_URL may list the nodes of a cluster: every
attempt goes to the next one, so a lost node is replaced by any other that answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from yarl import URL

from payout_core.logging import get_logger
from payout_core.messaging.topology import Topology, declare_topology
from payout_core.settings import split_amqp_urls

log = get_logger(__name__)
# aiormq queues at most 10 frames for its socket writer; the publisher past that waits while
# holding the channel lock, and the rest of a batch then gets through one event-loop turn
# each: 500 publishes took 10-30 s on a busy API (confirm timeouts). Room for whole batches
# keeps them in flight together: the same 500 take well under a second.
WRITE_BUFFER_FRAMES = 2048
# Opening a connection with its channel and topology, and closing it: never waited on longer.
OPEN_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 5.0
PERSISTENT = int(aio_pika.DeliveryMode.PERSISTENT)


@dataclass(frozen=True)
class OutgoingMessage:
    routing_key: str
    body: bytes
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)
    exchange: str | None = None  # None: the payouts exchange; "": the default exchange


class BrokerUnavailable(ConnectionError):
    """The broker is not connected right now."""


def cancelled_from_outside() -> bool:
    """Whether the running task itself is being cancelled. aiormq also cancels the calls in
    flight on a connection it lost: a CancelledError without this is a lost connection."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class BackoffRobustConnection(aio_pika.RobustConnection):
    """A robust connection whose reconnect attempts back off exponentially.

    aio-pika waits a fixed reconnect_interval between attempts; here the wait is as long as the
    broker has been gone so far (0.1 s, 0.2 s, 0.4 s ...), capped by reconnect_interval: quick
    after a blip, gentle during a long outage.
    """

    FIRST_RETRY_S = 0.1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lost_at: float | None = None
        self._max_backoff_s = 5.0
        super().__init__(*args, **kwargs)

    @property
    def reconnect_interval(self) -> float:
        if self._lost_at is None:
            return self.FIRST_RETRY_S
        down_for = time.monotonic() - self._lost_at
        return min(max(down_for, self.FIRST_RETRY_S), self._max_backoff_s)

    @reconnect_interval.setter
    def reconnect_interval(self, value: float) -> None:
        # aio-pika sets it from the URL (?reconnect_interval=, default 5): it is our cap.
        self._max_backoff_s = float(value)

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        if self._lost_at is None:
            self._lost_at = time.monotonic()
        await super()._on_connection_close(closing)

    async def _on_connected(self) -> None:
        await super()._on_connected()
        self._lost_at = None


class ClusterConnection(BackoffRobustConnection):
    """A robust connection to one node of a cluster at a time, trying them in turn.

    aio-pika connects to `self.url` and clears `self.transport` before every attempt (the
    first, and each reconnection after a loss): that is where the next node is chosen. After a
    node is lost the next attempt goes to another node; a node that refuses is skipped.
    """

    def __init__(self, urls: Sequence[str], first: int = 0, **kwargs: Any) -> None:
        self._nodes = [URL(url) for url in urls]
        self._attempts = first - 1
        super().__init__(self._nodes[first], **kwargs)
        self._attempts = first - 1  # __init__ cleared the transport too: not an attempt

    @property
    def transport(self) -> Any:
        return self._transport

    @transport.setter
    def transport(self, value: Any) -> None:
        self._transport = value
        if value is None and hasattr(self, "_nodes"):  # a new attempt: the next node
            self._attempts += 1
            self.url = self._nodes[self._attempts % len(self._nodes)]
            # aio-pika reads the credentials and options of the URL once; nodes share them.

    @property
    def node(self) -> str:
        return f"{self.url.host}:{self.url.port}"

    async def _on_connected(self) -> None:
        await super()._on_connected()
        log.info("broker_node_connected", node=self.node)


class Broker:
    def __init__(
        self,
        url: str,
        *,
        retry_delays_ms: Sequence[int] = (),
        connect_backoff_max_s: float = 5.0,
    ) -> None:
        """retry_delays_ms: the delay queues this process retries through (declared with the
        rest of the topology); a process that never retries declares none."""
        self._urls = split_amqp_urls(url)
        self._next_node = 0
        self._retry_delays_ms = tuple(retry_delays_ms)
        self._backoff_max = connect_backoff_max_s
        self._connection: AbstractRobustConnection | None = None
        self._topology: Topology | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Publishing has a channel of its own, replaced after any batch that fails on it.
        self._publisher: AbstractRobustChannel | None = None
        self._publisher_lock = asyncio.Lock()
        self.publishing_channels_opened = 0

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
        if aiormq.Connection.FRAME_BUFFER_SIZE < WRITE_BUFFER_FRAMES:
            aiormq.Connection.FRAME_BUFFER_SIZE = WRITE_BUFFER_FRAMES
        self._task = asyncio.create_task(self._connect_forever(), name="broker-connect")

    async def wait_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def _open(self) -> tuple[ClusterConnection, Topology]:
        """One connection and its topology, declared on a channel of its own (the topology's
        objects hold it: the robust connection keeps channels only weakly, and restores the
        topology on it after a reconnect); closed again if any step fails."""
        connection = ClusterConnection(self._urls, self._next_node)
        # The first attempt fails fast; later ones go on in the background.
        self._next_node = (self._next_node + 1) % len(self._urls)
        try:
            await connection.connect(timeout=5)
            channel = await connection.channel(publisher_confirms=True)
            topology = await declare_topology(
                channel, retry_delays_ms=self._retry_delays_ms, connection=connection
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT_S)
            raise
        return connection, topology

    async def _connect_forever(self) -> None:
        delay = 0.1
        while True:
            try:
                # Bounded: a step the broker never answers (a channel it closed under us)
                # must not leave the process connected but never ready.
                connection, topology = await asyncio.wait_for(self._open(), OPEN_TIMEOUT_S)
            except (TimeoutError, OSError, RuntimeError, aio_pika.exceptions.AMQPError) as exc:
                # RuntimeError: aio-pika's for a channel or connection closed under it.
                error = str(exc) or type(exc).__name__
            except asyncio.CancelledError:
                if cancelled_from_outside():
                    raise
                error = "CancelledError"
            else:
                self._connection, self._topology = connection, topology
                self._ready.set()
                log.info("broker_connected", node=connection.node)
                return
            log.warning("broker_connect_failed", error=error, retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff_max)

    async def publish_batch(self, messages: Sequence[OutgoingMessage], timeout: float = 10) -> None:
        """Publish persistently and wait for every confirm; the confirms are in flight together.

        Raises on any failure (including a message the broker could not route): the caller
        keeps its rows unpublished and tries again. A batch that fails replaces the publishing
        channel: a channel can go on nacking every publish after the node leading a quorum
        queue is lost, although the queue has a new leader (its queue client in the broker's
        channel process keeps the old one), and only a new channel starts clean.
        """
        if not self.is_ready:
            raise BrokerUnavailable("RabbitMQ is not connected")
        publisher = await self._publishing_channel(timeout)
        try:
            await self._publish_on(publisher, messages, timeout)
        except BaseException:
            await self._replace_publisher(publisher)
            raise

    async def _publishing_channel(self, timeout: float) -> AbstractRobustChannel:
        async with self._publisher_lock:
            if self._publisher is None or self._publisher.is_closed:
                try:
                    self._publisher = await asyncio.wait_for(
                        self.connection.channel(publisher_confirms=True), timeout
                    )
                    self.publishing_channels_opened += 1
                except (TimeoutError, aio_pika.exceptions.AMQPError) as exc:
                    raise BrokerUnavailable(f"no publishing channel: {exc!r}") from exc
            return self._publisher

    async def _replace_publisher(self, failed: AbstractRobustChannel) -> None:
        """Close a channel a batch failed on, once: the next batch opens a new one (batches
        in flight on it fail too, and are published again by their callers)."""
        if self._publisher is not failed:
            return
        self._publisher = None
        log.info("broker_publish_channel_replaced")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(failed.close(), CLOSE_TIMEOUT_S)

    async def _publish_on(
        self, publisher: AbstractRobustChannel, messages: Sequence[OutgoingMessage], timeout: float
    ) -> None:
        channel = await asyncio.wait_for(publisher.get_underlay_channel(), timeout)
        exchange_name = self.topology.exchange.name

        async def publish(msg: OutgoingMessage) -> None:
            # The frame's properties as aio_pika.Message would make them, without the Message.
            properties = aiormq.spec.Basic.Properties(
                content_type="application/json",
                delivery_mode=PERSISTENT,
                message_id=msg.message_id,
                headers=dict(msg.headers),
            )
            # wait=False: do not hold the channel lock until the socket drains (see
            # WRITE_BUFFER_FRAMES); the confirm is still awaited.
            confirmation = await channel.basic_publish(  # type: ignore[call-arg]  # wait= is aiormq Channel's, not in its AbstractChannel
                msg.body,
                exchange=exchange_name if msg.exchange is None else msg.exchange,
                routing_key=msg.routing_key,
                properties=properties,
                mandatory=True,
                timeout=timeout,
                wait=False,
            )
            if not isinstance(confirmation, aiormq.spec.Basic.Ack):
                raise BrokerUnavailable(f"message {msg.message_id} was not routed")

        results = await asyncio.gather(*(publish(m) for m in messages), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            first = f"{type(errors[0]).__name__}: {errors[0]}"
            raise BrokerUnavailable(
                f"{len(errors)} of {len(messages)} publishes failed; first: {first}"
            ) from errors[0]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            # Bounded: after the broker closed the connection under us, closing may never end.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connection.close(), CLOSE_TIMEOUT_S)

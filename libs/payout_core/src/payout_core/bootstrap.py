"""The resources every process shares, built from Settings in this one place: the PostgreSQL
engine and the RabbitMQ connection. The API (payout_api.app), the processor
(payout_processor.wiring) and `payout-admin` each build theirs here and compose their own
pieces on top. Building opens nothing: the broker connects when started, the engine on first
use."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.engine import create_engine
from payout_core.messaging.broker import Broker
from payout_core.settings import Settings


def build_engine(
    settings: Settings, *, pool_size: int | None = None, max_waiting: int | None = None
) -> AsyncEngine:
    """The engine over DATABASE_URL; a pool of DB_POOL_SIZE unless the process needs fewer."""
    size = settings.db_pool_size if pool_size is None else pool_size
    return create_engine(settings.database_url, pool_size=size, max_waiting=max_waiting)


def build_broker(settings: Settings, *, retry_delays_ms: Sequence[int] = ()) -> Broker:
    """The connection to AMQP_URL; only a process that retries names its delay queues."""
    return Broker(settings.amqp_url, retry_delays_ms=retry_delays_ms)


@dataclass(frozen=True)
class SharedResources:
    engine: AsyncEngine
    broker: Broker

    def start(self) -> None:
        """Connect to the broker in the background (the process starts while it is away)."""
        self.broker.start()

    async def close(self) -> None:
        await self.broker.close()
        await self.engine.dispose()


def build_resources(
    settings: Settings,
    *,
    pool_size: int | None = None,
    max_waiting: int | None = None,
    retry_delays_ms: Sequence[int] = (),
) -> SharedResources:
    return SharedResources(
        build_engine(settings, pool_size=pool_size, max_waiting=max_waiting),
        build_broker(settings, retry_delays_ms=retry_delays_ms),
    )


@contextlib.asynccontextmanager
async def ready_resources(
    settings: Settings, *, pool_size: int | None = None, timeout_s: float = 30.0
) -> AsyncIterator[SharedResources]:
    """Resources whose broker is connected (within timeout_s), closed on the way out: for a
    command that runs once."""
    resources = build_resources(settings, pool_size=pool_size)
    resources.start()
    try:
        await resources.broker.wait_ready(timeout=timeout_s)
        yield resources
    finally:
        await resources.close()

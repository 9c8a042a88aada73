"""Engine construction from DATABASE_URL."""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

# A connection back in the pool for less than this is known good and is not pinged again.
PING_WHEN_IDLE_S = 1.0
# A first-come-first-served gate per engine in front of its pool, for autocommit().
_GATES: weakref.WeakKeyDictionary[Engine, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def async_url(database_url: str) -> str:
    """postgresql://... as SQLAlchemy's asyncpg URL."""
    url = make_url(database_url)
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    engine = create_async_engine(
        async_url(database_url),
        # A fixed set of connections: overflow ones were closed on return and reopened at
        # the next burst (a TLS attempt, auth and codec set-up each time), under load.
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=5,
        # Errors and logs never echo statement values (account numbers live in them).
        hide_parameters=True,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        # Short connect timeout so an unreachable database turns into a 503 quickly.
        connect_args={"timeout": 5, "command_timeout": 30},
    )
    _ping_idle_connections(engine)
    _GATES[engine.sync_engine] = asyncio.Semaphore(pool_size)
    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """pool_pre_ping, but only for connections that sat idle in the pool.

    With asyncpg, SQLAlchemy's pre-ping costs three round trips (BEGIN, ping, ROLLBACK) on
    every checkout, more than a whole request under load. A connection returned a moment ago
    is known good; one that sat idle (the database may have restarted) is pinged and, if
    dead, replaced before use, as pool_pre_ping would.
    """
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_WHEN_IDLE_S:
            return  # just connected, or just used
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("idle connection failed its ping") from exc


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection outside any transaction block: each statement is its own transaction.

    One round trip per statement instead of BEGIN, statement, COMMIT: for reads, and for
    writes that are a single statement.

    Callers queue for it in order: the pool's own wait (an asyncio.Queue) lets a newcomer take
    a returned connection before the waiter woken for it, and on a saturated process a waiter
    could starve until pool_timeout (a 503). A semaphore of the pool's size is fair (FIFO).
    """
    gate = _GATES.get(engine.sync_engine)
    async with gate or contextlib.nullcontext(), engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn

"""Engine construction from DATABASE_URL."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from sqlalchemy import JSON, ClauseElement, event
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from payout_core.db.dsn import connect_url
from payout_core.db.errors import READ_ONLY_SQLSTATE, sqlstate_of

# A connection back in the pool for less than this is known good and is not pinged again.
PING_WHEN_IDLE_S = 1.0
# How long a caller waits for a pooled connection, and how long a connection attempt may take
# (each host of a multi-host URL gets this much): an unreachable database is a 503 by then.
POOL_WAIT_S = 5.0
CONNECT_TIMEOUT_S = 5.0
# A statement unanswered this long has lost its server (the services' statements take
# milliseconds); the API answers its callers sooner (API_DB_TIMEOUT_S).
COMMAND_TIMEOUT_S = 30.0
# TCP: a silent peer is noticed within KEEPIDLE + KEEPINTVL * KEEPCNT seconds when idle, and
# data it does not acknowledge fails the socket after USER_TIMEOUT ms (a dropped route, a dead
# node whose address nobody answers for), instead of the kernel's ~15 minutes of retransmits.
TCP_KEEPIDLE_S = 10
TCP_KEEPINTVL_S = 5
TCP_KEEPCNT = 3
TCP_USER_TIMEOUT_MS = 15_000


class _Gate:
    """First-come-first-served admission to a pool, with a bounded queue (see autocommit())."""

    def __init__(self, size: int, max_waiting: int | None) -> None:
        self.slots = asyncio.Semaphore(size)
        self.max_waiting = max_waiting
        self.waiting = 0

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        if self.max_waiting is not None and self.waiting >= self.max_waiting:
            raise PoolTimeout(f"{self.waiting} callers already wait for a database connection")
        if self.slots.locked():  # else a slot is free and nobody waits: no timer to set
            self.waiting += 1
            try:
                async with asyncio.timeout(POOL_WAIT_S):
                    await self.slots.acquire()
            except TimeoutError:
                raise PoolTimeout(f"no database connection free after {POOL_WAIT_S} s") from None
            finally:
                self.waiting -= 1
        else:
            await self.slots.acquire()
        try:
            yield
        finally:
            self.slots.release()


_GATES: weakref.WeakKeyDictionary[Engine, _Gate] = weakref.WeakKeyDictionary()


def async_url(database_url: str) -> str:
    """The SQLAlchemy URL naming the dialect; connections are made from DATABASE_URL itself."""
    return "postgresql+asyncpg://"


def set_tcp_timeouts(sock: socket.socket | None) -> None:
    """Keepalives and a user timeout on a client socket (Linux options where available)."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", TCP_KEEPIDLE_S),
        ("TCP_KEEPINTVL", TCP_KEEPINTVL_S),
        ("TCP_KEEPCNT", TCP_KEEPCNT),
        ("TCP_USER_TIMEOUT", TCP_USER_TIMEOUT_MS),
    ):
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def _connector(database_url: str) -> Any:
    """asyncpg reads libpq's URL itself, multi-host form and target_session_attrs included."""
    dsn = connect_url(database_url)

    async def connect() -> asyncpg.Connection:
        conn = await asyncpg.connect(
            dsn, timeout=CONNECT_TIMEOUT_S, command_timeout=COMMAND_TIMEOUT_S
        )
        # asyncpg has no public accessor for its socket.
        set_tcp_timeouts(conn._transport.get_extra_info("socket"))  # type: ignore[attr-defined]
        return conn

    return connect


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(
    database_url: str, pool_size: int = 10, *, max_waiting: int | None = None
) -> AsyncEngine:
    """An engine over DATABASE_URL (one host or libpq's multi-host form).

    max_waiting bounds the callers queued in autocommit() for a connection: past it they are
    refused at once (PoolTimeout: a 503), so a database that stopped answering cannot pile
    up requests (and their memory) without bound. None: no bound.
    """
    engine = create_async_engine(
        async_url(database_url),
        async_creator=_connector(database_url),
        # A fixed set of connections: overflow ones were closed on return and reopened at
        # the next burst (a TLS attempt, auth and codec set-up each time), under load.
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=POOL_WAIT_S,
        # Errors and logs never echo statement values (account numbers live in them).
        hide_parameters=True,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
    )
    _ping_idle_connections(engine)
    _drop_connections_to_read_only_servers(engine)
    _GATES[engine.sync_engine] = _Gate(pool_size, max_waiting)
    return engine


def _drop_connections_to_read_only_servers(engine: AsyncEngine) -> None:
    """A server that answers "read-only" (SQLSTATE 25006) is a standby now (a failover
    demoted it) or was made read-only: every pooled connection to it is useless. Treating
    the error as a disconnect invalidates the whole pool; the next connections go through
    target_session_attrs again and find the primary."""

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: Any) -> None:
        if sqlstate_of(context.original_exception) == READ_ONLY_SQLSTATE:
            context.is_disconnect = True
            context.invalidate_pool_on_disconnect = True


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """pool_pre_ping, but only for connections that sat idle in the pool.

    With asyncpg, SQLAlchemy's pre-ping costs three round trips (BEGIN, ping, ROLLBACK) on
    every checkout, more than a whole request under load. A connection returned a moment ago
    is known good; one that sat idle (the database may have restarted, or become a standby)
    is asked whether it can still write and, if dead or read-only, replaced before use.
    """
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_WHEN_IDLE_S:
            return  # just connected, or just used
        try:
            read_only = _is_read_only(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("idle connection failed its ping") from exc
        if read_only:
            raise DisconnectionError("idle connection is to a read-only server")


def _is_read_only(dbapi_connection: Any) -> bool:
    """One round trip, like SELECT 1, that also tells a standby (SELECT 1 succeeds there)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SHOW transaction_read_only")
        return bool(cursor.fetchone()[0] == "on")
    finally:
        cursor.close()
        # The driver began a transaction for it: end it, so that a connection checked out
        # for driver_connection() runs each statement on its own (and none is rolled back).
        dbapi_connection.rollback()


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection outside any transaction block: each statement is its own transaction.

    One round trip per statement instead of BEGIN, statement, COMMIT: for reads, and for
    writes that are a single statement.

    Callers queue for it in order: the pool's own wait (an asyncio.Queue) lets a newcomer take
    a returned connection before the waiter woken for it, and on a saturated process a waiter
    could starve until pool_timeout (a 503). A semaphore of the pool's size is fair (FIFO).
    The queue is bounded when the engine was made with max_waiting, and nobody waits longer
    than POOL_WAIT_S: both end in PoolTimeout, which callers answer with a 503.
    """
    async with _admitted(engine), engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


def _admitted(engine: AsyncEngine) -> contextlib.AbstractAsyncContextManager[None]:
    """A place in the engine's queue for a connection (see autocommit())."""
    gate = _GATES.get(engine.sync_engine)
    return gate.admit() if gate else contextlib.nullcontext()


class DriverStatement:
    """A statement compiled once for asyncpg: its SQL ($n placeholders, with the casts
    SQLAlchemy renders) and how named values become its arguments (JSON serialized as the
    engine serializes it)."""

    def __init__(self, statement: ClauseElement) -> None:
        compiled: Any = statement.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
        self.sql = compiled.string
        json_names = {n for n, b in compiled.binds.items() if isinstance(b.type, JSON)}
        self._names = [(name, name in json_names) for name in compiled.positiontup or ()]

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        return [_json_dumps(values[n]) if is_json else values[n] for n, is_json in self._names]


class DriverConnection:
    """asyncpg's own connection under a pooled SQLAlchemy one, for the hot statements.

    asyncpg prepares each statement once per connection (its statement cache) and nothing of
    SQLAlchemy's execution path runs (compilation cache lookup, execution context, cursor
    adaptation, result processing: more CPU than the database's own work). A failure is
    handed to SQLAlchemy as if its own execution had raised it, so it is translated and
    wrapped alike and the engine's handle_error rules apply (a lost connection is
    invalidated, a read-only server drops the pool). See driver_connection().
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        raw: PoolProxiedConnection = conn.connection
        self._adapted: Any = raw.dbapi_connection  # SQLAlchemy's adapter of the connection
        self._driver: Any = raw.driver_connection  # an asyncpg.Connection

    async def fetchrow(self, statement: DriverStatement, values: Mapping[str, Any]) -> Any:
        return await self._run(self._driver.fetchrow, statement, values)

    async def fetch(self, statement: DriverStatement, values: Mapping[str, Any]) -> Any:
        return await self._run(self._driver.fetch, statement, values)

    async def _run(
        self,
        call: Callable[..., Awaitable[Any]],
        statement: DriverStatement,
        values: Mapping[str, Any],
    ) -> Any:
        try:
            return await call(statement.sql, *statement.arguments(values))
        except BaseException as exc:
            await greenlet_spawn(self._raise_as_sqlalchemy, exc, statement.sql)
            raise  # pragma: no cover - the line above always raises

    def _raise_as_sqlalchemy(self, exc: BaseException, sql: str) -> None:
        sync: Any = self._conn
        try:
            self._adapted._handle_exception(exc)  # raises the DBAPI error asyncpg's maps to
        except BaseException as translated:
            is_dbapi = isinstance(translated, sync.dialect.loaded_dbapi.Error)
            # SQLAlchemy's own handling (private API, pinned by uv.lock): as for a failed
            # execute() without an execution context.
            sync._handle_dbapi_exception(translated, sql if is_dbapi else None, None, None, None)


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[DriverConnection]:
    """A pooled connection to run DriverStatements on, admitted as autocommit() admits:
    statements sent to the driver begin no transaction (SQLAlchemy's adapter would), so no
    isolation level is set (and reset) for them.

    The engine's sync Connection, checked out and returned in a greenlet each (the pool may
    connect, ping or roll back there), not an AsyncConnection: its object, weakref and the
    task it shields each close() in cost as much CPU as the statement's own client work.

    A valid connection is returned without a greenlet (a third of the checkout's CPU): driver
    statements begin no transaction in SQLAlchemy's adapter (the idle ping ends its own at
    checkout), so returning it sends nothing, and nothing yields to the loop, so a
    cancellation cannot cut it short. An invalidated one (a lost connection) is closed in a
    greenlet, as closing the driver's connection may await."""
    async with _admitted(engine):
        conn = await greenlet_spawn(engine.sync_engine.connect)
        try:
            yield DriverConnection(conn)
        finally:
            if conn.invalidated:
                await greenlet_spawn(conn.close)
            else:
                conn.close()

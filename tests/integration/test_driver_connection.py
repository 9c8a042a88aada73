"""Statements on the driver's connection (payout_core.db.engine.driver_connection): each one
its own transaction, and their failures seen as SQLAlchemy's would be."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db import engine as engine_module
from payout_core.db.dsn import connect_url
from payout_core.db.engine import DriverStatement, driver_connection
from payout_core.db.errors import sqlstate_of
from payout_core.settings import Settings


@pytest.fixture
async def probe_table(engine: AsyncEngine) -> AsyncIterator[str]:
    name = f"driver_probe_{uuid.uuid4().hex[:12]}"
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"CREATE TABLE {name} (id integer PRIMARY KEY)"))
    yield name
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"DROP TABLE {name}"))


def _insert(table: str) -> DriverStatement:
    return DriverStatement(
        sa.text(f"INSERT INTO {table} (id) VALUES (:id)").bindparams(
            sa.bindparam("id", type_=sa.Integer)
        )
    )


async def _ids(settings: Settings, table: str) -> list[int]:
    conn = await asyncpg.connect(connect_url(settings.database_url))
    try:
        return [r["id"] for r in await conn.fetch(f"SELECT id FROM {table} ORDER BY id")]
    finally:
        await conn.close()


async def test_a_write_on_a_connection_pinged_at_checkout_is_committed(
    engine: AsyncEngine, settings: Settings, probe_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The idle-connection ping runs through SQLAlchemy's adapter, which begins a
    transaction; a driver statement after it must not land in that transaction (rolled back
    when the connection returns to the pool)."""
    monkeypatch.setattr(engine_module, "PING_WHEN_IDLE_S", 0.0)  # every checkout pings
    insert = _insert(probe_table)
    for payout_id in (1, 2):
        async with driver_connection(engine) as driver:
            await driver.fetchrow(insert, {"id": payout_id})
    assert await _ids(settings, probe_table) == [1, 2]


async def test_a_failed_statement_is_raised_as_sqlalchemy_raises_it(
    engine: AsyncEngine, settings: Settings, probe_table: str
) -> None:
    insert = _insert(probe_table)
    async with driver_connection(engine) as driver:
        await driver.fetchrow(insert, {"id": 1})
        with pytest.raises(IntegrityError) as caught:
            await driver.fetchrow(insert, {"id": 1})
        assert sqlstate_of(caught.value) == "23505"  # unique_violation, from the driver
        assert caught.value.hide_parameters  # wrapped with the engine's settings
        await driver.fetchrow(insert, {"id": 2})  # the connection is still usable
    assert await _ids(settings, probe_table) == [1, 2]


async def test_the_connection_returns_to_the_pool_after_a_statement_and_after_a_failure(
    engine: AsyncEngine, probe_table: str
) -> None:
    pool = engine.sync_engine.pool
    insert = _insert(probe_table)
    async with driver_connection(engine) as driver:
        await driver.fetchrow(insert, {"id": 1})
        assert pool.checkedout() == 1  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError):
        async with driver_connection(engine) as driver:
            await driver.fetchrow(insert, {"id": 1})
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_lost_connection_is_replaced_and_the_next_statement_runs(
    engine: AsyncEngine, settings: Settings, probe_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session killed under a pooled connection: the statement fails as SQLAlchemy says a
    disconnect fails (invalidated), and the pool hands out a new connection next."""
    monkeypatch.setattr(engine_module, "PING_WHEN_IDLE_S", 3600.0)  # the statement meets it
    insert = _insert(probe_table)
    async with driver_connection(engine) as driver:
        pid = await driver._driver.fetchval("SELECT pg_backend_pid()")
    admin = await asyncpg.connect(connect_url(settings.database_url))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    with pytest.raises(DBAPIError) as caught:
        async with driver_connection(engine) as driver:
            await driver.fetchrow(insert, {"id": 1})
    assert caught.value.connection_invalidated
    async with driver_connection(engine) as driver:
        await driver.fetchrow(insert, {"id": 2})
    assert await _ids(settings, probe_table) == [2]
    assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_statement_cancelled_midway_is_cancelled_on_the_server_and_the_pool_serves_on(
    engine: AsyncEngine, settings: Settings, probe_table: str
) -> None:
    """Cancelled while the server still runs its statement, the connection goes back to the
    pool without a greenlet (it is not invalidated: the driver cancels the statement and
    waits for the server before its next one), and the next callers are served on it."""
    sleep = DriverStatement(sa.text("SELECT pg_sleep(30)"))
    started = asyncio.Event()

    async def sleeper() -> None:
        async with driver_connection(engine) as driver:
            started.set()
            await driver.fetchrow(sleep, {})

    task = asyncio.create_task(sleeper())
    await started.wait()
    await _until_active(settings, "SELECT pg_sleep(30)", active=True)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    await _until_active(settings, "SELECT pg_sleep(30)", active=False)
    insert = _insert(probe_table)
    for payout_id in range(1, 4):  # more uses than the test engine has connections
        async with driver_connection(engine) as driver:
            await driver.fetchrow(insert, {"id": payout_id})
    assert await _ids(settings, probe_table) == [1, 2, 3]


async def _until_active(
    settings: Settings, query: str, *, active: bool, deadline_s: float = 10.0
) -> None:
    """Until the server runs `query` in some session (active) or in none."""
    conn = await asyncpg.connect(connect_url(settings.database_url))
    running = "SELECT count(*) > 0 FROM pg_stat_activity WHERE query = $1 AND state = 'active'"
    try:
        deadline = asyncio.get_running_loop().time() + deadline_s
        while await conn.fetchval(running, query) != active:
            assert asyncio.get_running_loop().time() < deadline, f"{query!r} active: {not active}"
            await asyncio.sleep(0.02)
    finally:
        await conn.close()

"""PostgreSQL that turned read-only (a standby after a failover) or went silent (a black hole)
under the real API: 503s, never 500s, a bounded wait, and service again without a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
import structlog

from payout_api.app import create_app
from payout_api.keys import BROKER, ENGINE
from payout_core.clients import create_client
from payout_core.settings import Settings
from tests.support.infra import PG_ADMIN_URL, Infra
from tests.support.load import PROBLEM_JSON, payout_body
from tests.support.polling import eventually
from tests.support.tcp_proxy import TcpProxy

DEADLINE_S = 1.0
SLACK_S = 1.5


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def read_only_switch(fresh_infra: Infra) -> AsyncIterator[callable]:
    """Make the test database read-only for new sessions (as a standby is) and end the
    sessions already open, or writable again for new sessions only (the open read-only ones
    stay, as connections to a demoted primary would); only this test's database is touched."""
    name = fresh_infra.database

    async def switch(read_only: bool) -> None:
        value = "on" if read_only else "off"
        await _admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {value}')
        if read_only:
            await _admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )

    yield switch
    await _admin(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')


async def test_a_read_only_server_gives_503_and_the_pool_finds_a_writable_one(
    aiohttp_client, fresh_infra: Infra, read_only_switch
):
    settings = Settings.from_env(fresh_infra.env(DB_POOL_SIZE="3"))
    api = await aiohttp_client(await create_app(settings))
    await api.app[BROKER].wait_ready(timeout=15)
    async with api.app[ENGINE].begin() as conn:
        auth = {"Authorization": f"Bearer {await create_client(conn, 'read-only test')}"}
    assert (await api.post("/api/payouts/", json=payout_body(), headers=auth)).status == 201

    await read_only_switch(True)
    statuses = []
    with structlog.testing.capture_logs() as logs:
        for _ in range(4):  # the killed sessions, then read-only ones: 503 each time
            resp = await api.post("/api/payouts/", json=payout_body(), headers=auth)
            statuses.append(resp.status)
            assert resp.content_type == PROBLEM_JSON
    assert statuses == [503] * 4, statuses
    errors = [e.get("error", "") for e in logs if e["event"] == "database_unavailable"]
    assert any("read-only transaction" in error for error in errors), errors

    await read_only_switch(False)

    async def created() -> bool:
        resp = await api.post("/api/payouts/", json=payout_body(), headers=auth)
        return resp.status == 201

    # Without dropping the pool's read-only connections this would stay 503 until a restart.
    await eventually(created, timeout=10, interval=0.2, what="a 201 from a writable server")


@pytest.fixture
def silent_database(settings: Settings) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy.to_url(settings.database_url).start()
    yield proxy
    proxy.close()


async def test_a_black_holed_database_gets_503s_within_the_deadline_and_a_bounded_queue(
    aiohttp_client, settings: Settings, silent_database: TcpProxy, auth
):
    proxied = dataclasses.replace(
        settings,
        database_url=silent_database.proxied(settings.database_url),
        db_pool_size=2,
        api_db_timeout_s=DEADLINE_S,
        api_db_max_waiting=2,
    )
    api = await aiohttp_client(await create_app(proxied))
    await api.app[BROKER].wait_ready(timeout=15)
    assert (await api.post("/api/payouts/", json=payout_body(), headers=auth)).status == 201

    silent_database.stall()

    async def timed_post() -> tuple[int, float]:
        started = time.monotonic()
        resp = await api.post("/api/payouts/", json=payout_body(), headers=auth)
        assert resp.content_type == PROBLEM_JSON
        return resp.status, time.monotonic() - started

    answers = await asyncio.gather(*(timed_post() for _ in range(8)))
    assert [status for status, _ in answers] == [503] * 8
    assert max(seconds for _, seconds in answers) < DEADLINE_S + SLACK_S, answers
    # 2 hold the pool's connections, 2 wait for them; the rest are refused without waiting.
    refused_at_once = [seconds for _, seconds in answers if seconds < DEADLINE_S / 2]
    assert len(refused_at_once) >= 4, answers

    silent_database.restore()

    async def created() -> bool:
        resp = await api.post("/api/payouts/", json=payout_body(), headers=auth)
        return resp.status == 201

    await eventually(created, timeout=40, interval=0.5, what="a 201 after the black hole")

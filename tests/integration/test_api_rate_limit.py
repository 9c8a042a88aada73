"""The per-key rate limit on the real app and PostgreSQL: 429 with Retry-After and the
RateLimit headers, one key's flood neither limits another key nor reaches the database."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import replace

import pytest
from sqlalchemy import event

from payout_api.app import create_app
from payout_api.keys import ENGINE, RATE_LIMITER
from payout_api.problems import PROBLEM_CONTENT_TYPE

LIST = "/api/payouts/"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def limited_app(aiohttp_client, settings):
    async def make(rate_per_s: float, burst: int, **overrides):
        limited = replace(settings, rate_limit_per_s=rate_per_s, rate_limit_burst=burst)
        return await aiohttp_client(await create_app(replace(limited, **overrides)))

    return make


async def test_past_the_burst_a_key_gets_429_with_retry_after_and_ratelimit_headers(
    limited_app, new_client_key
):
    api = await limited_app(0.5, 3)  # a token every 2 s: none comes back during the test
    auth = bearer(await new_client_key())
    seen = []
    for _ in range(3):
        resp = await api.get(LIST, headers=auth)
        assert resp.status == 200
        assert resp.headers["RateLimit-Policy"] == '"default";q=3;w=6'
        seen.append(resp.headers["RateLimit"])
    assert seen == ['"default";r=2;t=2', '"default";r=1;t=4', '"default";r=0;t=6']

    refused = await api.post(LIST, json={}, headers=auth)
    assert refused.status == 429
    assert refused.content_type == PROBLEM_CONTENT_TYPE
    body = await refused.json()
    assert body["type"] == "/problems/rate-limited" and body["status"] == 429
    assert refused.headers["Retry-After"] == "2"
    assert refused.headers["RateLimit"] == '"default";r=0;t=2'
    assert refused.headers["RateLimit-Policy"] == '"default";q=3;w=6'
    assert "X-Request-ID" in refused.headers


async def test_a_401_is_not_counted_and_carries_no_ratelimit_headers(limited_app):
    api = await limited_app(0.5, 1)
    for _ in range(3):
        resp = await api.get(LIST, headers=bearer("sk_unknown_key_0000"))
        assert resp.status == 401
        assert "RateLimit" not in resp.headers and "RateLimit-Policy" not in resp.headers


async def test_rate_zero_turns_the_limit_off(limited_app, new_client_key):
    api = await limited_app(0.0, 1)
    auth = bearer(await new_client_key())
    statuses = [(await api.get(LIST, headers=auth)).status for _ in range(20)]
    assert statuses == [200] * 20
    resp = await api.get(LIST, headers=auth)
    assert "RateLimit" not in resp.headers and "RateLimit-Policy" not in resp.headers


async def test_one_key_flooding_neither_limits_another_nor_reaches_the_database(
    limited_app, new_client_key
):
    rate_per_s, burst = 5.0, 5
    # Two connections only: if refused requests did database work, the other key would queue.
    api = await limited_app(rate_per_s, burst, db_pool_size=2)
    greedy, polite = bearer(await new_client_key()), bearer(await new_client_key())
    # Warm the key cache of both keys (a key's first request looks it up in the database).
    assert (await api.get(LIST, headers=greedy)).status == 200
    assert (await api.get(LIST, headers=polite)).status == 200
    alone, lone_key = [], bearer(await new_client_key())  # the same request without a flood
    for _ in range(4):
        started = time.perf_counter()
        assert (await api.get(LIST, headers=lone_key)).status == 200
        alone.append(time.perf_counter() - started)
    statements = []

    def count(conn, cursor, statement, *args):
        if "outbox" not in statement:  # the relay polls the outbox on its own schedule
            statements.append(statement)

    engine = api.app[ENGINE].sync_engine
    event.listen(engine, "before_cursor_execute", count)
    flooding = asyncio.Event()
    greedy_statuses: list[int] = []

    async def flood() -> None:
        gate = asyncio.Semaphore(16)

        async def one() -> None:
            async with gate:
                greedy_statuses.append((await api.get(LIST, headers=greedy)).status)

        flooding.set()
        await asyncio.gather(*(one() for _ in range(400)))

    polite_statuses, polite_latencies = [], []

    async def browse() -> None:
        await flooding.wait()
        for _ in range(4):  # 4 requests: inside the polite key's own burst of 5
            started = time.perf_counter()
            polite_statuses.append((await api.get(LIST, headers=polite)).status)
            polite_latencies.append(time.perf_counter() - started)

    started = time.monotonic()
    await asyncio.gather(flood(), browse())
    elapsed = time.monotonic() - started
    event.remove(engine, "before_cursor_execute", count)

    greedy_ok = greedy_statuses.count(200)
    assert polite_statuses == [200] * 4, "the other key was limited or starved"
    assert set(greedy_statuses) == {200, 429}
    # The bucket: what was left of the burst plus the refill while flooding, no more.
    assert greedy_ok <= burst - 1 + rate_per_s * elapsed + 1
    # Refused requests did no database work: one list query per accepted request.
    accepted = greedy_ok + len(polite_statuses)
    assert len(statements) <= 2 * accepted, (len(statements), accepted)
    print(
        f"\nflood: {len(greedy_statuses)} requests in {elapsed:.2f}s, {greedy_ok} accepted, "
        f"{greedy_statuses.count(429)} refused; {len(statements)} statements; other key: "
        f"median {statistics.median(polite_latencies) * 1000:.1f} ms, "
        f"max {max(polite_latencies) * 1000:.1f} ms (alone: median "
        f"{statistics.median(alone) * 1000:.1f} ms; client and server share one event loop)"
    )


async def test_buckets_of_idle_keys_are_forgotten(limited_app, new_client_key):
    api = await limited_app(1000.0, 50)  # an empty bucket fills in 50 ms
    limiter = api.app[RATE_LIMITER]
    # The limiter's own clock, held still and then moved on: a loaded machine can take longer
    # than the window between two requests, which is not what this test is about.
    now = [1000.0]
    limiter._clock = lambda: now[0]
    keys = [bearer(await new_client_key()) for _ in range(5)]
    for auth in keys:
        assert (await api.get(LIST, headers=auth)).status == 200
    assert len(limiter) == 5
    now[0] += 1.0  # past the 50 ms in which an empty bucket fills again
    assert (await api.get(LIST, headers=keys[0])).status == 200
    assert len(limiter) == 1

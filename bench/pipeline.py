"""End-to-end figures read from the database: how fast payouts reach a terminal status.

Times come from the rows themselves (created_at is set by the API when it accepts a payout,
processed_at by the processor's final transaction), so polling only decides when to stop.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg

from bench.load import LoadResult, Wrk, wrk_per_thread_quota
from bench.machine import MachineSampler
from bench.paced import post_at_fixed_rate
from bench.resources import ResourceSampler
from bench.stack import Stack

POLL_EVERY_S = 0.1
STALLED_AFTER_S = 5.0
TERMINAL = "('processed', 'failed', 'cancelled')"
_COUNTS = f"SELECT count(*), count(*) FILTER (WHERE status IN {TERMINAL}) FROM payouts"
# Latency of every payout asked about; one not terminal yet counts as "until now", a lower
# bound that keeps a stalled pipeline from looking fast.
_LATENCY = """SELECT count(*) AS payouts,
  extract(epoch FROM max(processed_at) - min(created_at)) AS span_s,
  extract(epoch FROM max(created_at) - min(created_at)) AS creating_s,
  percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (
    ORDER BY extract(epoch FROM coalesce(processed_at, clock_timestamp()) - created_at)
  ) AS latency_s,
  extract(epoch FROM max(coalesce(processed_at, clock_timestamp()) - created_at))
    AS max_latency_s
FROM payouts WHERE {where}"""


@dataclass
class DrainResult:
    payouts: int
    terminal: int
    complete: bool
    creating_s: float
    create_rate: float
    drain_s: float
    drain_rate: float
    wall_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    http: LoadResult


@dataclass
class FixedRateResult:
    rate: float
    payouts: int
    terminal: int
    complete: bool
    non2xx: int
    errors: int
    client_max_lag_ms: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    http_p50_ms: float
    http_p99_ms: float


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _counts(conn: asyncpg.Connection) -> tuple[int, int]:
    row = await conn.fetchrow(_COUNTS)
    return int(row[0]), int(row[1])


async def _create(
    stack: Stack, conn: asyncpg.Connection, *, payouts: int, connections: int, deadline_s: float
) -> LoadResult:
    """`payouts` POSTs as fast as wrk sends them (fewer if creation stalls)."""
    wrk = Wrk(
        stack.api.url,
        "post",
        connections=connections,
        duration_s=deadline_s,
        env={
            "BENCH_API_KEY": stack.key,
            "BENCH_RUN_ID": f"drain{int(time.time())}",
            "BENCH_QUOTA": str(wrk_per_thread_quota(payouts, connections)),
        },
    )
    started = time.monotonic()
    await wrk.start()
    last_total, last_growth = 0, started
    try:
        while time.monotonic() - started < deadline_s:
            total, _ = await _counts(conn)
            now = time.monotonic()
            if total != last_total:
                last_total, last_growth = total, now
            if total >= payouts or now - last_growth > STALLED_AFTER_S:
                break
            await asyncio.sleep(POLL_EVERY_S)
    finally:
        wrk.interrupt()  # wrk's threads stopped at their quota; end the process
    return await wrk.result()


async def until(conn: asyncpg.Connection, query: str, deadline: float) -> None:
    """Poll until `query` (a boolean) holds or the deadline passes."""
    while time.monotonic() < deadline:
        if await conn.fetchval(query):
            return
        await asyncio.sleep(POLL_EVERY_S)


_ALL_TERMINAL = f"SELECT NOT EXISTS (SELECT 1 FROM payouts WHERE status NOT IN {TERMINAL})"
ALL_PUBLISHED = "SELECT NOT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)"


async def drain(stack: Stack, *, payouts: int, connections: int, deadline_s: float) -> DrainResult:
    """`payouts` POSTs as fast as wrk sends them; wait until every one is terminal."""
    conn = await asyncpg.connect(stack.infra.database_url)
    try:
        started = time.monotonic()
        http = await _create(
            stack, conn, payouts=payouts, connections=connections, deadline_s=deadline_s
        )
        await until(conn, _ALL_TERMINAL, started + deadline_s)
        wall_s = time.monotonic() - started
        total, done = await _counts(conn)
        row = await conn.fetchrow(_LATENCY.format(where="true"))
    finally:
        await conn.close()
    complete = done == total and total >= payouts
    # Unfinished at the deadline: the time it had, not the span of what did finish.
    span = float(row["span_s"] or 0.0) if complete else wall_s
    creating = float(row["creating_s"] or 0.0)
    latency = row["latency_s"] or [0.0, 0.0, 0.0]
    return DrainResult(
        payouts=total,
        terminal=done,
        complete=complete,
        creating_s=round(creating, 2),
        create_rate=round(total / creating, 1) if creating else 0.0,
        drain_s=round(span, 2),
        drain_rate=round(done / span, 1) if span else 0.0,
        wall_s=round(wall_s, 2),
        latency_p50_ms=round(latency[0] * 1000, 1),
        latency_p99_ms=round(latency[2] * 1000, 1),
        http=http,
    )


@dataclass
class BacklogResult:
    payouts: int
    terminal: int
    complete: bool
    drain_s: float
    drain_rate: float
    cpu_us_per_payout: dict[str, int]
    machine_cpu_us: dict[str, int]
    machine_busy: float
    cores: int


_PROCESSED_SPAN = f"""SELECT count(*) FILTER (WHERE status IN {TERMINAL}) AS done,
  extract(epoch FROM max(processed_at) - min(processed_at)) AS span_s FROM payouts"""


async def backlog_drain(
    stack: Stack, *, payouts: int, connections: int, deadline_s: float
) -> BacklogResult:
    """The processor stopped while `payouts` are created and published, then started on the
    backlog: how fast the pipeline catches up after an outage, with no creation competing.
    The rate runs from the first payout processed to the last."""
    assert stack.processor is not None
    stack.processor.stop()
    conn = await asyncpg.connect(stack.infra.database_url)
    try:
        deadline = time.monotonic() + deadline_s
        await _create(stack, conn, payouts=payouts, connections=connections, deadline_s=deadline_s)
        await until(conn, ALL_PUBLISHED, deadline)
        processor = stack.processor.restarted()
        await asyncio.to_thread(processor.start)
        try:
            pids = {"processor": processor.proc.pid if processor.proc else 0}
            pids["provider"] = stack.pids["provider"]
            sampler, machine = ResourceSampler(pids), MachineSampler()
            sampler.begin()
            machine.begin()
            await until(conn, _ALL_TERMINAL, deadline)
            usage, machine_usage = await sampler.end(), machine.end()
        finally:
            await asyncio.to_thread(processor.stop)
        total, _ = await _counts(conn)
        row = await conn.fetchrow(_PROCESSED_SPAN)
    finally:
        await conn.close()
    done, span = int(row["done"]), float(row["span_s"] or 0.0)
    return BacklogResult(
        payouts=total,
        terminal=done,
        complete=done == total >= payouts,
        drain_s=round(span, 2),
        drain_rate=round(done / span, 1) if span else 0.0,
        cpu_us_per_payout={k: round(u.cpu_s / done * 1e6) if done else 0 for k, u in usage.items()},
        **machine_usage.figures(done),
    )


async def fixed_rate(
    stack: Stack, *, rate: float, duration_s: float, deadline_s: float
) -> FixedRateResult:
    """POSTs at `rate` per second (open loop); created-to-terminal latency of each payout."""
    paced = await post_at_fixed_rate(stack.api.url, stack.key, rate=rate, duration_s=duration_s)
    conn = await asyncpg.connect(stack.infra.database_url)
    try:
        ids = paced.created_ids
        query = f"SELECT count(*) FROM payouts WHERE id = ANY($1::uuid[]) AND status IN {TERMINAL}"
        deadline = time.monotonic() + deadline_s
        done = 0
        while time.monotonic() < deadline:
            done = await conn.fetchval(query, ids)
            if done == len(ids):
                break
            await asyncio.sleep(POLL_EVERY_S)
        row = await conn.fetchrow(_LATENCY.format(where="id = ANY($1::uuid[])"), ids)
    finally:
        await conn.close()
    latency = row["latency_s"] or [0.0, 0.0, 0.0]
    return FixedRateResult(
        rate=rate,
        payouts=len(ids),
        terminal=done,
        complete=done == len(ids) == paced.sent,
        non2xx=paced.non2xx,
        errors=paced.errors,
        client_max_lag_ms=round(paced.max_lag_ms, 1),
        latency_p50_ms=round(latency[0] * 1000, 1),
        latency_p90_ms=round(latency[1] * 1000, 1),
        latency_p99_ms=round(latency[2] * 1000, 1),
        latency_max_ms=round(float(row["max_latency_s"] or 0.0) * 1000, 1),
        http_p50_ms=round(_percentile(paced.latencies_ms, 0.5), 1),
        http_p99_ms=round(_percentile(paced.latencies_ms, 0.99), 1),
    )

"""`make bench`: the machine's limits, then the services under load, in one run.

1. A database and vhost of its own: pgbench (a POST's transaction shape, scratch tables) at 16
   and 64 clients, and RabbitMQ persistent publishes with confirms: the physical limits.
2. The floor (bench/floor.py: a bare aiohttp + uvloop + asyncpg handler running the API's
   exact statements) on a database of its own, and payout-api alone on the first database,
   both running; wrk loads one at a time: the floor's POST at 64 connections, the API's POST
   at 16 and 64 connections (no Idempotency-Key) and at 64 with a key on every request, the
   floor's POST again; the floor's GET one, the API's, the floor's again; the API's GET list.
   Each floor figure pools its two runs, which bracket the API's (report.pooled).
3. A fresh database and vhost, payout-api + payout-processor + the simulated provider answering
   at once: drain 20,000 payouts created as fast as possible, then created->terminal latency
   at 200/s; then again with the provider taking 1 s per transfer, default settings.
4. The cost of tracing: a drain of 3,000 payouts with tracing off, on at 100% and on at 10%
   (bench/tracing_cost.py); `--tracing-only` runs this phase alone.

Prints one table, writes bench/results/bench-<time>.{json,png,txt} (and latest.*). Service
settings come from the environment as under `make run` (e.g. API_WORKERS=2 make bench).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench import limits, profile, report, tracing_cost
from bench.floor_service import floor_service
from bench.load import Wrk
from bench.machine import MachineSampler
from bench.pipeline import ALL_PUBLISHED, backlog_drain, drain, fixed_rate, until
from bench.resources import ResourceSampler
from bench.stack import Stack, bench_infra, running_stack
from tests.support.infra import Infra

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
TOOLS = ("wrk", "pgbench", "rabbitmqctl")
WARMUP_S = 3
GET_IDS = 5000
MIN_FREE_CONNECTIONS = 64 + 25  # pgbench's clients, then the API's pool
SLOW_PROVIDER_MS = 1000
# Service settings worth recording beside the figures.
RECORDED_ENV = (
    "API_WORKERS",
    "DB_POOL_SIZE",
    "PROCESSOR_CONCURRENCY",
    "PROCESSOR_PREFETCH",
    "LOG_LEVEL",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n")[0])
    parser.add_argument("--load-seconds", type=int, default=15, help="each wrk scenario")
    parser.add_argument("--limit-seconds", type=int, default=8, help="each pgbench run")
    parser.add_argument("--drain-payouts", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=200.0, help="fixed-rate payouts/s")
    parser.add_argument("--rate-seconds", type=float, default=15.0)
    parser.add_argument(
        "--slow-payouts", type=int, default=2000, help="drained with a 1 s provider"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the services")
    parser.add_argument("--label", default="", help="appended to the result file names")
    parser.add_argument("--tracing-payouts", type=int, default=3000, help="drain per mode")
    parser.add_argument("--tracing-only", action="store_true", help="only the tracing phase")
    return parser.parse_args(argv)


def _git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    return git("rev-parse", "--short", "HEAD") + dirty


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass(frozen=True)
class Target:
    """What wrk loads: a base URL, the bearer key, and the process whose CPU is counted."""

    url: str
    key: str
    pid: int

    @classmethod
    def api(cls, stack: Stack) -> Target:
        return cls(stack.api.url, stack.key, stack.pids["api"])


async def _wrk(target: Target, script: str, connections: int, seconds: float, **env: str) -> Any:
    return await Wrk(
        target.url,
        script,
        connections=connections,
        duration_s=seconds,
        env={"BENCH_API_KEY": target.key, "BENCH_RUN_ID": f"{script}{time.time_ns()}", **env},
    ).run()


async def _profiled(
    args: argparse.Namespace, stack: Stack, service: str, name: str, seconds: float
) -> asyncio.subprocess.Process | None:
    if not args.profile:
        return None
    path = RESULTS_DIR / f"profile-{service}-{name}{args.label}.txt"
    return await profile.record(stack.pids[service], seconds, path)


async def _summarize_profile(
    args: argparse.Namespace, proc: asyncio.subprocess.Process | None, service: str, name: str
) -> None:
    if proc is None:
        return
    await proc.wait()
    path = RESULTS_DIR / f"profile-{service}-{name}{args.label}.txt"
    if path.exists():
        summary = profile.summarize(path)
        path.with_suffix(".summary").write_text(summary + "\n")
        print(f"  py-spy {service} during {name}: {path.with_suffix('.summary')}", file=sys.stderr)


async def free_connections(infra: Infra) -> int:
    """PostgreSQL connections left (pgbench needs 64; other users of the server count)."""
    conn = await asyncpg.connect(infra.database_url)
    try:
        free = await conn.fetchval(
            "SELECT current_setting('max_connections')::int - count(*) FROM pg_stat_activity"
        )
    finally:
        await conn.close()
    if free < MIN_FREE_CONNECTIONS:
        print(f"warning: only {free} free PostgreSQL connections", file=sys.stderr)
    return int(free)


async def measure_limits(args: argparse.Namespace, stack_infra: Infra) -> dict[str, Any]:
    await limits.create_scratch_tables(stack_infra.database_url)
    out: dict[str, Any] = {}
    for key, script, clients in (
        ("pg_shape_16", limits.PAYOUT_AND_OUTBOX, 16),
        ("pg_shape_64", limits.PAYOUT_AND_OUTBOX, 64),
        ("pg_full_64", limits.FULL_POST, 64),
    ):
        print(f"- limit: pgbench {key}", file=sys.stderr)
        result = await limits.pgbench(
            stack_infra, key, script, clients=clients, duration_s=args.limit_seconds
        )
        out[key] = asdict(result)
    print("- limit: RabbitMQ publishes with confirms", file=sys.stderr)
    out["rabbitmq_confirms"] = asdict(await limits.rabbitmq_publish_rate(stack_infra.amqp_url))
    return out


async def _scenario(
    args: argparse.Namespace,
    target: Target,
    stack: Stack | None,
    name: str,
    script: str,
    connections: int,
    **env: str,
) -> dict[str, Any]:
    """One wrk run, with the target's CPU time per request (robust to a busy machine); the API
    is profiled with --profile (the floor never is)."""
    print(f"- {'api' if stack else 'floor'}: {name}", file=sys.stderr)
    sampler, machine = ResourceSampler({"target": target.pid}), MachineSampler()
    sampler.begin()
    machine.begin()
    spy = await _profiled(args, stack, "api", name, args.load_seconds - 2) if stack else None
    result = await _wrk(target, script, connections, args.load_seconds, **env)
    usage, machine_usage = await sampler.end(), machine.end()
    await _summarize_profile(args, spy, "api", name)
    cpu_us = usage["target"].cpu_s / result.requests * 1e6 if result.requests else 0.0
    return {
        **asdict(result),
        "api_cpu_us_per_request": round(cpu_us),
        **machine_usage.figures(result.requests),
    }


async def _sample_ids_and_analyze(database_url: str) -> list[str]:
    """Payout ids to GET, and fresh planner statistics: the POST scenarios just grew the table
    from empty, and autovacuum's ANALYZE would come at a random moment of the GET runs."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("ANALYZE")
        rows = await conn.fetch("SELECT id FROM payouts ORDER BY random() LIMIT $1", GET_IDS)
    finally:
        await conn.close()
    return [str(row["id"]) for row in rows]


NO_KEY = {"BENCH_IDEMPOTENCY_KEY": "0"}


async def _get_one(
    args: argparse.Namespace, target: Target, stack: Stack | None, database_url: str
) -> dict[str, Any]:
    ids_file = RESULTS_DIR / ".payout-ids"
    ids = await _sample_ids_and_analyze(database_url)
    ids_file.write_text("".join(f"{i}\n" for i in ids))
    try:
        return await _scenario(
            args, target, stack, "get_one", "get_one", 64, BENCH_IDS_FILE=str(ids_file)
        )
    finally:
        ids_file.unlink()


async def _outbox_published(database_url: str, deadline_s: float = 60.0) -> None:
    """Wait for the API's relay to publish what the API's runs left: a floor run starts with no
    work of the API's going on."""
    conn = await asyncpg.connect(database_url)
    try:
        await until(conn, ALL_PUBLISHED, time.monotonic() + deadline_s)
    finally:
        await conn.close()


async def measure_floor_and_api(
    args: argparse.Namespace, floor: Target, floor_database_url: str, stack: Stack
) -> tuple[dict, dict, dict]:
    """The floor's runs bracket the API's: one before and one after the API's runs of the same
    request, pooled (report.pooled). A share then compares the two around the same moment of
    the run, so a drift of the shared machine's speed cancels, instead of comparing runs
    minutes apart."""
    sampler = ResourceSampler(stack.pids)
    sampler.begin()
    api = Target.api(stack)
    print("- floor and api: warm-up", file=sys.stderr)
    for target in (floor, api):
        await _wrk(target, "post", 16, WARMUP_S, **NO_KEY)

    async def floor_post() -> dict[str, Any]:
        await _outbox_published(stack.infra.database_url)
        return await _scenario(args, floor, None, "post_64", "post", 64, **NO_KEY)

    async def floor_get_one() -> dict[str, Any]:
        await _outbox_published(stack.infra.database_url)
        return await _get_one(args, floor, None, floor_database_url)

    posts = [await floor_post()]
    out = {
        "post_16": await _scenario(args, api, stack, "post_16", "post", 16, **NO_KEY),
        "post_64": await _scenario(args, api, stack, "post_64", "post", 64, **NO_KEY),
        "post_64_key": await _scenario(args, api, stack, "post_64_key", "post", 64),
    }
    posts.append(await floor_post())
    gets = [await floor_get_one()]
    out["get_one"] = await _get_one(args, api, stack, stack.infra.database_url)
    gets.append(await floor_get_one())
    out["list"] = await _scenario(args, api, stack, "list", "list", 64)
    usage = await sampler.end()
    floor_results = {"post_64": report.pooled(posts), "get_one": report.pooled(gets)}
    return floor_results, out, {name: asdict(u) for name, u in usage.items()}


async def measure_pipeline(args: argparse.Namespace, stack: Stack) -> tuple[dict, dict]:
    sampler = ResourceSampler(stack.pids)
    sampler.begin()
    print(f"- pipeline: drain {args.drain_payouts} payouts", file=sys.stderr)
    spies = [await _profiled(args, stack, s, "drain", 10) for s in ("api", "processor")]
    drain_sampler, machine = ResourceSampler(stack.pids), MachineSampler()
    drain_sampler.begin()
    machine.begin()
    drained = await drain(stack, payouts=args.drain_payouts, connections=64, deadline_s=300)
    drain_usage, machine_usage = await drain_sampler.end(), machine.end()
    for spy, service in zip(spies, ("api", "processor"), strict=True):
        await _summarize_profile(args, spy, service, "drain")
    cpu_us = {
        service: round(u.cpu_s / drained.payouts * 1e6) if drained.payouts else 0
        for service, u in drain_usage.items()
    }
    print(f"- pipeline: {args.rate:.0f} payouts/s for {args.rate_seconds:.0f} s", file=sys.stderr)
    paced = await fixed_rate(stack, rate=args.rate, duration_s=args.rate_seconds, deadline_s=60)
    usage = await sampler.end()
    return (
        {
            "drain": {
                **asdict(drained),
                "cpu_us_per_payout": cpu_us,
                **machine_usage.figures(drained.payouts),
            },
            "fixed_rate": asdict(paced),
        },
        {name: asdict(u) for name, u in usage.items()},
    )


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """The phases; each runs its own event loop between the (blocking) set-up steps."""
    started = time.monotonic()
    results: dict[str, Any] = {
        "meta": {
            "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "git_commit": _git_commit(),
            "cpus": os.cpu_count(),
            "load_before": _load(),
            "settings": {k: os.environ[k] for k in RECORDED_ENV if k in os.environ},
            "args": vars(args),
        },
        "resources": {},
    }
    log_dir = RESULTS_DIR / "logs"
    with bench_infra("api") as infra:
        results["meta"]["free_db_connections"] = asyncio.run(free_connections(infra))
        results["limits"] = asyncio.run(measure_limits(args, infra))
        # The floor on a database of its own: its outbox rows are never published, and the
        # API's relay must not find them.
        with (
            bench_infra("floor") as floor_infra,
            floor_service(floor_infra, log_dir) as floor,
            running_stack(infra, log_dir / "api-phase", processor=False, env={}) as stack,
        ):
            floor_target = Target(floor.url, "", floor.proc.pid if floor.proc else 0)
            results["floor"], results["api"], results["resources"]["api"] = asyncio.run(
                measure_floor_and_api(args, floor_target, floor_infra.database_url, stack)
            )
    with (
        bench_infra("pipeline") as infra,
        running_stack(infra, log_dir / "pipeline-phase", processor=True, env={}) as stack,
    ):
        results["pipeline"], results["resources"]["pipeline"] = asyncio.run(
            measure_pipeline(args, stack)
        )
    # A backlog, as an outage leaves one: created with the processor stopped, then drained.
    with (
        bench_infra("backlog") as infra,
        running_stack(infra, log_dir / "backlog-phase", processor=True, env={}) as stack,
    ):
        print(f"- pipeline: a backlog of {args.drain_payouts} drained", file=sys.stderr)
        backlog = asyncio.run(
            backlog_drain(stack, payouts=args.drain_payouts, connections=64, deadline_s=300)
        )
        results["pipeline"]["backlog"] = asdict(backlog)
    # I/O-bound processing with the services' default settings: the provider takes 1 s.
    slow_env = {"PROVIDER_DELAY_MS": str(SLOW_PROVIDER_MS)}
    with (
        bench_infra("slow") as infra,
        running_stack(
            infra, log_dir / "slow-provider-phase", processor=True, env=slow_env
        ) as stack,
    ):
        print(f"- pipeline: drain {args.slow_payouts} with a 1 s provider", file=sys.stderr)
        slow = asyncio.run(drain(stack, payouts=args.slow_payouts, connections=64, deadline_s=300))
        results["pipeline"]["drain_slow_provider"] = asdict(slow)
    results["tracing"] = tracing_cost.measure_tracing(args.tracing_payouts, log_dir)
    results["meta"]["load_after"] = _load()
    results["meta"]["duration_s"] = round(time.monotonic() - started, 1)
    results["targets"] = report.targets(results)
    results["bounds"] = report.bounds(results)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        print(f"missing {', '.join(missing)}: run `make bench-deps` first", file=sys.stderr)
        return 2
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if args.tracing_only:
        return bench_tracing_only(args)
    results = bench(args)
    text = "\n\n".join(
        (
            report.table(results),
            report.bounds_text(results["bounds"]),
            tracing_cost.table(results["tracing"]),
        )
    )
    meta = results["meta"]
    header = (
        f"make bench {meta['started_at']}, commit {meta['git_commit']}, {meta['cpus']} CPUs, "
        f"load {meta['load_before']} -> {meta['load_after']}, {meta['duration_s']} s"
    )
    print(f"\n{header}\n\n{text}\n")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + args.label
    for name in (f"bench-{stamp}", "latest"):
        report.write_json(results, RESULTS_DIR / f"{name}.json")
        (RESULTS_DIR / f"{name}.txt").write_text(f"{header}\n\n{text}\n")
        report.plot(results, RESULTS_DIR / f"{name}.png")
    print(f"results: {RESULTS_DIR / f'bench-{stamp}'}.{{json,txt,png}}")
    return 0


def bench_tracing_only(args: argparse.Namespace) -> int:
    """`make bench BENCH_ARGS=--tracing-only`: the tracing phase alone (bench-tracing-*)."""
    load_before, started = _load(), time.monotonic()
    tracing = tracing_cost.measure_tracing(args.tracing_payouts, RESULTS_DIR / "logs")
    header = (
        f"make bench --tracing-only {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, commit "
        f"{_git_commit()}, {os.cpu_count()} CPUs, load {load_before} -> {_load()}, "
        f"{time.monotonic() - started:.0f} s"
    )
    text = f"{header}\n\n{tracing_cost.table(tracing)}\n"
    print(f"\n{text}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + args.label
    report.write_json(
        {"header": header, "tracing": tracing}, RESULTS_DIR / f"bench-tracing-{stamp}.json"
    )
    (RESULTS_DIR / f"bench-tracing-{stamp}.txt").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

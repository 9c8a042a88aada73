"""This machine's physical limits, measured in the same run as the services:

- PostgreSQL: pgbench with a custom script doing a POST's transaction shape (one payout-shaped
  row plus one outbox row), into scratch copies of the real tables (same columns, defaults,
  checks and indexes), at the same concurrency as the HTTP load;
- RabbitMQ: persistent publishes with confirms (aio-pika, confirms in flight) to a durable
  quorum queue, like the outbox relay's.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import asyncpg

from tests.support.infra import Infra

PGBENCH_THREADS = 2
SCRATCH_TABLES = {
    "bench_limit_payouts": "payouts",
    "bench_limit_outbox": "outbox",
    "bench_limit_events": "payout_events",
    "bench_limit_idempotency": "idempotency_keys",
}
_PAYOUT_INSERT = """INSERT INTO bench_limit_payouts (id, client_id, amount, currency,
  recipient_details, description, metadata, status, idempotency_key, request_id, created_at,
  updated_at, version)
VALUES (gen_random_uuid(), '00000000-0000-0000-0000-000000000001', :amount / 100.0, 'USD',
  '{"account": "DE89370400440532013000", "name": "Bench", "bank_code": null}', 'bench payout',
  '{}', 'pending', gen_random_uuid()::text, 'bench', now(), now(), 1)
RETURNING *"""
_OUTBOX_INSERT = """INSERT INTO bench_limit_outbox (routing_key, payload, headers)
VALUES ('payout.created', jsonb_build_object('version', 1, 'type', 'payout.created',
  'payout_id', (:payout_id)::text, 'created_at', now()), '{"x-request-id": "bench"}')
RETURNING id"""
# The shape: one payout row plus one outbox row, a statement each.
PAYOUT_AND_OUTBOX = f"""\\set amount random(100, 1000000)
BEGIN;
{_PAYOUT_INSERT} \\gset payout_
{_OUTBOX_INSERT};
END;
"""
# What POST wrote per payout before this work: the same plus an event and an idempotency key.
FULL_POST = f"""\\set amount random(100, 1000000)
BEGIN;
{_PAYOUT_INSERT} \\gset payout_
INSERT INTO bench_limit_events (payout_id, from_status, to_status, reason, request_id)
VALUES ((:payout_id)::uuid, NULL, 'pending', 'created', 'bench');
{_OUTBOX_INSERT};
INSERT INTO bench_limit_idempotency (client_id, key, request_hash, payout_id, response_status,
  response_body)
VALUES ('00000000-0000-0000-0000-000000000001', (:payout_id)::uuid, 'hash',
  (:payout_id)::uuid, 201, '{{}}');
END;
"""


@dataclass
class PgbenchResult:
    script: str
    clients: int
    tps: float
    latency_avg_ms: float
    failed: int


@dataclass
class PublishResult:
    messages: int
    in_flight: int
    duration_s: float
    rate: float


async def create_scratch_tables(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for scratch, real in SCRATCH_TABLES.items():
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {scratch} (LIKE {real} INCLUDING ALL)")
    finally:
        await conn.close()


def parse_pgbench(output: str, script: str, clients: int) -> PgbenchResult:
    def number(pattern: str, default: float | None = None) -> float:
        match = re.search(pattern, output)
        if match is None:
            if default is None:
                raise RuntimeError(f"pgbench output has no {pattern!r}:\n{output[-2000:]}")
            return default
        return float(match.group(1))

    return PgbenchResult(
        script=script,
        clients=clients,
        tps=round(number(r"tps = ([\d.]+)"), 1),
        latency_avg_ms=number(r"latency average = ([\d.]+) ms"),
        failed=int(number(r"number of failed transactions: (\d+)", 0)),
    )


async def pgbench(
    infra: Infra, name: str, script: str, *, clients: int, duration_s: int
) -> PgbenchResult:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.sql"
        path.write_text(script)
        proc = await asyncio.create_subprocess_exec(
            "pgbench",
            "--no-vacuum",
            "--protocol=prepared",
            f"--client={clients}",
            f"--jobs={min(PGBENCH_THREADS, clients)}",
            f"--time={duration_s}",
            f"--file={path}",
            infra.database_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        stdout, _ = await proc.communicate()
    output = stdout.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"pgbench failed ({proc.returncode}):\n{output[-2000:]}")
    return parse_pgbench(output, name, clients)


async def rabbitmq_publish_rate(
    amqp_url: str, *, messages: int = 20_000, in_flight: int = 500
) -> PublishResult:
    """Persistent publishes to a durable quorum queue, `in_flight` confirms outstanding."""
    body = b'{"version": 1, "type": "payout.created", "payout_id": "%d", "created_at": "now"}'
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(
            "bench.limit", durable=True, arguments={"x-queue-type": "quorum"}
        )
        window = asyncio.Semaphore(in_flight)

        async def publish(n: int) -> None:
            async with window:
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        body % n,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        message_id=str(n),
                    ),
                    routing_key=queue.name,
                )

        started = time.perf_counter()
        await asyncio.gather(*(publish(n) for n in range(messages)))
        elapsed = time.perf_counter() - started
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
    return PublishResult(messages, in_flight, round(elapsed, 2), round(messages / elapsed, 1))

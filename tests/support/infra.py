"""Test databases and RabbitMQ vhosts of their own, created and removed by the suite."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_BASE = PG_ADMIN_URL.rsplit("/", 1)[0]
AMQP_BASE = os.environ.get("TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
RABBITMQCTL = os.environ.get("RABBITMQCTL", "rabbitmqctl")

T = TypeVar("T")


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"


def rabbitmqctl(*args: str, attempts: int = 3) -> None:
    """Run rabbitmqctl; the CLI occasionally fails to reach a busy node, so try again."""
    for attempt in range(1, attempts + 1):
        proc = subprocess.run(
            [RABBITMQCTL, "-q", *args], capture_output=True, text=True, timeout=60
        )
        if proc.returncode == 0:
            return
        if attempt == attempts:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {proc.stderr.strip()}")


def create_vhost(name: str) -> str:
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return f"{AMQP_BASE}/{name}"


def delete_vhost(name: str) -> None:
    rabbitmqctl("delete_vhost", name)


def queue_info(vhost: str, column: str) -> dict[str, str]:
    """Each queue of `vhost` with one `rabbitmqctl list_queues` column ("" where unset)."""
    out = subprocess.run(
        [RABBITMQCTL, "-q", "list_queues", "-p", vhost, "name", column, "--formatter", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return {row["name"]: row[column] or "" for row in json.loads(out)}


async def _admin(action: Callable[[asyncpg.Connection], Awaitable[object]]) -> object:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        return await action(conn)
    finally:
        await conn.close()


def create_database(name: str, template: str | None = None) -> str:
    sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    asyncio.run(_admin(lambda c: c.execute(sql)))
    return f"{PG_BASE}/{name}"


def drop_database(name: str) -> None:
    asyncio.run(_admin(lambda c: c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


def provider_database_url(database_url: str) -> str:
    """The simulated provider's database beside a test database: same server, name + _prov."""
    return database_url + "_prov"


@dataclass
class Infra:
    """One database and one vhost, isolated from `make run` data and from other tests, and a
    database for the simulated provider that serves them (created by the provider itself)."""

    database: str
    vhost: str
    database_url: str
    amqp_url: str
    # Set by whatever starts the simulated provider for this infra (tests/support/provider.py).
    provider_url: str | None = None

    @property
    def provider_database_url(self) -> str:
        return provider_database_url(self.database_url)

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "DATABASE_URL": self.database_url,
            "AMQP_URL": self.amqp_url,
            "PROVIDER_SIM_DATABASE_URL": self.provider_database_url,
            "PROVIDER_SIM_TEST_CONTROLS": "1",
            # The processor waits 2 s for an answer; the slow test account answers after 3 s.
            "PROVIDER_TIMEOUT_S": "2",
            "PROVIDER_SIM_SLOW_ANSWER_MS": "3000",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
            "PROVIDER_DELAY_MS": "0",
            "PROCESSOR_RETRY_BASE_MS": "50",
            "SHUTDOWN_GRACE_S": "10",
            "OUTBOX_POLL_INTERVAL_MS": "200",
            # Load and fault tests send thousands of requests with one key: far beyond the
            # default per-key limit. Kept on (the headers are checked everywhere), never reached;
            # tests of the limit itself set their own.
            "RATE_LIMIT_PER_S": "100000",
            "RATE_LIMIT_BURST": "100000",
            # The 5 s default turns a slow 201 into a 503 on a machine other work saturates;
            # the tests of that deadline set their own.
            "API_DB_TIMEOUT_S": "30",
            # Receivers in the tests listen on http://127.0.0.1 (tests of the refusal set false).
            "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            "WEBHOOK_RETRY_SCHEDULE_S": "1,1,1",
        }
        if self.provider_url is not None:
            env["PROVIDER_URL"] = self.provider_url
        env.update(overrides)
        return env


def make_infra(template_db: str) -> Infra:
    database = unique_name("payouts_test")
    vhost = unique_name("payouts_test")
    database_url = create_database(database, template=template_db)
    amqp_url = create_vhost(vhost)
    return Infra(database, vhost, database_url, amqp_url)


def remove_infra(infra: Infra) -> None:
    try:
        drop_database(infra.database)
        drop_database(infra.database + "_prov")
    finally:
        delete_vhost(infra.vhost)

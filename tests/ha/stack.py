"""The whole data plane of `make test-ha`: 3 RabbitMQ nodes, a PostgreSQL primary and
standby, two API processes and two processors with multi-host URLs. Everything lives under
one temporary folder and is torn down by close(), whatever state a scenario left it in."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.ha.pg_pair import PgPair
from tests.ha.rabbit_cluster import RabbitCluster
from tests.support.infra import PG_BASE, drop_database, unique_name
from tests.support.processes import (
    BIN,
    Service,
    api_service,
    processor_service,
    provider_service,
)

DATABASE = "payouts_ha"
API_KEY = "ha-test-key-0123456789abcdef"
READY_TIMEOUT_S = 90.0
SERVICE_ENV = {
    "LOG_FORMAT": "json",
    # Warnings and errors only: an access-log line per request costs CPU the machine lacks.
    "LOG_LEVEL": "warning",
    "API_BOOTSTRAP_KEY": API_KEY,
    # The provider's latency bounds how fast the processors drain a backlog, and so how much
    # of the two cores they take from the API while they do (2 x 16 in flight / 0.1 s).
    "PROVIDER_DELAY_MS": "100",
    # A retry budget (1+2+...+64 s) longer than any outage here: today the processor spends a
    # payout's attempts on a database outage (issue 13 changes that, then these can go).
    "PROCESSOR_RETRY_BASE_MS": "1000",
    "PROCESSOR_MAX_ATTEMPTS": "8",
    "OUTBOX_POLL_INTERVAL_MS": "200",
    "SHUTDOWN_GRACE_S": "15",
    "API_DB_TIMEOUT_S": "5",
    # Two worker processes per API "pod": while one API is restarted the other carries all
    # the load, on two cores that other work shares.
    "API_WORKERS": "2",
    "RECONCILE_INTERVAL_S": "5",
    "RECONCILE_STUCK_AFTER_S": "30",
}


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(child) for child in out.split()]


def memory(pid: int) -> int:
    """Resident memory of a process and its children (an API and its workers), in bytes."""
    total = 0
    for each in (pid, *children(pid)):
        with contextlib.suppress(OSError), open(f"/proc/{each}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


@dataclass
class HaStack:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="payouts-ha-")))
    apis: list[Service] = field(default_factory=list)
    processors: list[Service] = field(default_factory=list)
    provider: Service | None = None
    # The simulated provider is another company's service: it keeps its books on the
    # machine's PostgreSQL, outside the failover under test.
    provider_database: str = field(default_factory=lambda: unique_name("payouts_ha_provider"))

    def __post_init__(self) -> None:
        self.root.chmod(0o755)  # the rabbitmq and postgres users enter it
        self.rabbit = RabbitCluster(self.root / "rabbitmq")
        self.pg = PgPair(self.root / "postgresql")
        self.logs = self.root / "services"
        self.logs.mkdir()

    @property
    def database_url(self) -> str:
        """What the services and the checks use: both PostgreSQL nodes, the writable one."""
        return self.pg.database_url(DATABASE)

    @property
    def provider_database_url(self) -> str:
        return f"{PG_BASE}/{self.provider_database}"

    def env(self) -> dict[str, str]:
        env = {**SERVICE_ENV, "DATABASE_URL": self.database_url, "AMQP_URL": self.rabbit.urls}
        if self.provider is not None:
            env["PROVIDER_URL"] = self.provider.url
        return env

    def start(self) -> None:
        (self.root / "rabbitmq").mkdir()
        (self.root / "postgresql").mkdir()
        self.pg.start()
        self.rabbit.start()
        subprocess.run(
            [str(BIN / "payout-admin"), "migrate"],
            env={**os.environ, **self.env()},
            check=True,
            capture_output=True,
            timeout=180,
        )
        provider_env = {**SERVICE_ENV, "PROVIDER_SIM_DATABASE_URL": self.provider_database_url}
        self.provider = provider_service(provider_env, self.logs).start(timeout=READY_TIMEOUT_S)
        env = self.env()
        self.apis = [api_service(env, self.logs, f"api{i}") for i in (1, 2)]
        self.processors = [processor_service(env, self.logs, f"processor{i}") for i in (1, 2)]
        for service in (*self.apis, *self.processors):
            service.start(wait_ready=False)
        for service in (*self.apis, *self.processors):
            try:
                service.wait_ready(READY_TIMEOUT_S)
            except AssertionError as exc:
                tail = service.log_tail()
                raise AssertionError(f"{exc}\n{service.log_path.name}:\n{tail}") from None

    def close(self) -> None:
        try:
            provider = [self.provider] if self.provider else []
            for service in (*self.apis, *self.processors, *provider):
                if service.proc is not None and service.proc.poll() is None:
                    workers = children(service.proc.pid)  # API_WORKERS forks
                    service.stop()
                    for pid in workers:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
        finally:
            try:
                self.rabbit.close()
            finally:
                self.pg.close()
                with contextlib.suppress(Exception):
                    drop_database(self.provider_database)
                if os.environ.get("HA_KEEP") != "1":
                    shutil.rmtree(self.root, ignore_errors=True)

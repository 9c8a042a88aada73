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

from tests.ha.pg_pair import PgNode, PgPair
from tests.ha.rabbit_cluster import RabbitCluster
from tests.ha.system import chown_tree
from tests.support.processes import (
    BIN,
    Service,
    api_service,
    free_port,
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
    # PROCESSOR_RETRY_BASE_MS and PROCESSOR_MAX_ATTEMPTS stay at their defaults (1 s, 5): an
    # outage defers a payout without using up an attempt, at most the longest delay (8 s) at a
    # time, so no outage here needs a longer budget, and a longer one only delays recovery.
    "OUTBOX_POLL_INTERVAL_MS": "200",
    "SHUTDOWN_GRACE_S": "15",
    "API_DB_TIMEOUT_S": "5",
    # One process per API "pod" (API_WORKERS=1, the default): a rolling restart starts the
    # new before stopping the old, so each carries half the load; more workers only add
    # processes, relays and post-outage backlogs (API_DB_MAX_WAITING each) on two shared cores.
    # RECONCILE_INTERVAL_S and RECONCILE_STUCK_AFTER_S stay at their defaults (30 s, 300 s):
    # the reconciler cannot tell a lost message from one waiting behind a backlog, and with
    # 30 s it re-enqueued most payouts of an outage's backlog up to 5 times (77 000 duplicates
    # for 47 000 payouts in one run), a backlog of its own that kept the processors busy for
    # minutes. No scenario loses a message (quorum queues), so none needs it sooner.
}


# The API processes run before other work of the same priority on the machine: their answer
# times are asserted (scenario 4), and in a cluster a pod's CPU request is its own, whatever
# its neighbours do; here other suites share the two cores (load averages of 10 to 18 seen).
API_NICE = -5


def first_served(service: Service) -> None:
    assert service.proc is not None
    os.setpriority(os.PRIO_PROCESS, service.proc.pid, API_NICE)


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

    def __post_init__(self) -> None:
        self.root.chmod(0o755)  # the rabbitmq and postgres users enter it
        self.rabbit = RabbitCluster(self.root / "rabbitmq")
        self.pg = PgPair(self.root / "postgresql")
        # The simulated provider is another company's service: its books are on a PostgreSQL
        # of its own, outside the failover under test (not the machine's, whose connection
        # slots other suites take: a provider refused them answers 503 for minutes).
        self.provider_pg = PgNode("provider", self.root / "provider-postgresql", free_port())
        self.logs = self.root / "services"
        self.logs.mkdir()

    @property
    def database_url(self) -> str:
        """What the services and the checks use: both PostgreSQL nodes, the writable one."""
        return self.pg.database_url(DATABASE)

    @property
    def provider_database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.provider_pg.port}/payouts_provider_sim"

    def env(self) -> dict[str, str]:
        env = {**SERVICE_ENV, "DATABASE_URL": self.database_url, "AMQP_URL": self.rabbit.urls}
        if self.provider is not None:
            env["PROVIDER_URL"] = self.provider.url
        return env

    def start(self) -> None:
        (self.root / "rabbitmq").mkdir()
        (self.root / "postgresql").mkdir()
        self.pg.start()
        self.provider_pg.folder.mkdir()
        chown_tree(self.provider_pg.folder, "postgres")
        self.provider_pg.init()
        self.provider_pg.start()
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
            if service in self.apis:
                first_served(service)
        for service in (*self.apis, *self.processors):
            try:
                service.wait_ready(READY_TIMEOUT_S)
            except AssertionError as exc:
                tail = service.log_tail()
                raise AssertionError(f"{exc}\n{service.log_path.name}:\n{tail}") from None

    def surge(self, old: Service) -> Service:
        """A replacement for `old`, started and ready beside it, as a rollout that starts the
        new before stopping the old does (the chart's maxSurge 1, maxUnavailable 0 for two
        replicas): the same command and settings, on a port of its own."""
        fleet, make = (
            (self.apis, api_service) if old in self.apis else (self.processors, processor_service)
        )
        new = make(self.env(), self.logs, f"{old.log_path.stem}-next")
        fleet.insert(fleet.index(old) + 1, new)  # torn down by close() from now on
        new.start(wait_ready=False)
        if fleet is self.apis:
            first_served(new)
        new.wait_ready(READY_TIMEOUT_S)
        return new

    def retire(self, old: Service) -> int:
        """SIGTERM `old` and wait for it (up to the grace period and a little); its exit code."""
        code = old.stop(timeout=float(SERVICE_ENV["SHUTDOWN_GRACE_S"]) + 10)
        (self.apis if old in self.apis else self.processors).remove(old)
        return code

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
                self.provider_pg.stop_quietly()
                if os.environ.get("HA_KEEP") != "1":
                    shutil.rmtree(self.root, ignore_errors=True)

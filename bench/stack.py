"""The system under test: a database and a vhost of the bench's own, migrated with
`payout-admin migrate`, and the console scripts `make run` starts, as real processes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.infra import PG_BASE, Infra, create_vhost, remove_infra, unique_name
from tests.support.processes import (
    BIN,
    Service,
    api_service,
    processor_service,
    provider_service,
)

BOOTSTRAP_KEY = "sk_bench_bootstrap_key_0123456789"
# Settings the bench pins; everything else keeps the services' defaults, as under `make run`.
BASE_ENV = {
    "API_BOOTSTRAP_KEY": BOOTSTRAP_KEY,
    "LOG_FORMAT": "json",
    "PROVIDER_DELAY_MS": "0",
    # The bench measures capacity with one key; the per-key limit would measure the limit.
    "RATE_LIMIT_PER_S": "0",
}


@contextmanager
def bench_infra(label: str) -> Iterator[Infra]:
    """A new database (migrated by `payout-admin migrate`) and vhost, removed afterwards."""
    database = unique_name(f"payouts_bench_{label}")
    vhost = unique_name(f"payouts_bench_{label}")
    infra = Infra(database, vhost, f"{PG_BASE}/{database}", create_vhost(vhost))
    try:
        subprocess.run(
            [str(BIN / "payout-admin"), "migrate"],
            env={**os.environ, "DATABASE_URL": infra.database_url, "LOG_FORMAT": "json"},
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield infra
    finally:
        remove_infra(infra)


@dataclass
class Stack:
    infra: Infra
    api: Service
    processor: Service | None
    key: str = BOOTSTRAP_KEY
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def pids(self) -> dict[str, int]:
        return {name: s.proc.pid for name, s in self.services.items() if s.proc is not None}


@contextmanager
def running_stack(
    infra: Infra, log_dir: Path, *, processor: bool, env: dict[str, str]
) -> Iterator[Stack]:
    """payout-api (and payout-provider-sim + payout-processor) started and ready; SIGTERM'd
    afterwards."""
    service_env = {
        **BASE_ENV,
        "DATABASE_URL": infra.database_url,
        "AMQP_URL": infra.amqp_url,
        "PROVIDER_SIM_DATABASE_URL": infra.provider_database_url,
        **env,
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    provider = provider_service(service_env, log_dir) if processor else None
    if provider is not None:
        service_env["PROVIDER_URL"] = provider.url
    api = api_service(service_env, log_dir)
    worker = processor_service(service_env, log_dir) if processor else None
    stack = Stack(infra, api, worker)
    started: list[Service] = []
    try:
        for name, service in (("provider", provider), ("api", api), ("processor", worker)):
            if service is None:
                continue
            started.append(service.start(timeout=60))
            stack.services[name] = service
        yield stack
    finally:
        for service in reversed(started):
            service.stop()

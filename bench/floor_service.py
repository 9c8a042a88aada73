"""The floor (bench/floor.py) as a process of its own, like the services it is measured
against, on a database that `payout-admin` has migrated and given the bootstrap client."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from payout_core.clients import BOOTSTRAP_CLIENT
from tests.support.infra import Infra
from tests.support.processes import BIN, ROOT, Service, free_port


@contextmanager
def floor_service(infra: Infra, log_dir: Path) -> Iterator[Service]:
    subprocess.run(
        [str(BIN / "payout-admin"), "create-client", BOOTSTRAP_CLIENT, "--actor", "bench"],
        env={**os.environ, "DATABASE_URL": infra.database_url, "LOG_FORMAT": "json"},
        check=True,
        capture_output=True,
        timeout=120,
    )
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [sys.executable, "-m", "bench.floor", "--port", str(port)]
    service = Service(
        [*command, "--database-url", infra.database_url],
        {"PYTHONPATH": str(ROOT)},
        log_dir / "floor.log",
        port,
    )
    service.start()
    try:
        yield service
    finally:
        service.stop()

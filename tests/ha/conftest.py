"""`make test-ha`: one data plane for all scenarios, torn down whatever happens, and the table
of results printed at the end (also when a scenario failed)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ha.report import table
from tests.ha.scenarios import Outcome
from tests.ha.stack import HaStack

OUTCOMES: list[Outcome] = []
TABLE_FILE = Path(os.environ.get("HA_TABLE_FILE", "ha-results.md"))
NEEDED = ("runuser", "pg_config", "/usr/lib/rabbitmq/bin/rabbitmq-server")


@pytest.fixture(scope="session")
def stack() -> Iterator[HaStack]:
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"make test-ha needs {', '.join(missing)} (scripts/install-ha-deps.sh)")
    if os.geteuid() != 0:
        pytest.fail("make test-ha runs the servers as the rabbitmq and postgres users: run as root")
    stack = HaStack()
    try:
        stack.start()
        yield stack
    finally:
        stack.close()


@pytest.fixture
def outcomes() -> list[Outcome]:
    return OUTCOMES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not OUTCOMES:
        return
    text = table(OUTCOMES)
    terminalreporter.section("make test-ha")
    terminalreporter.write_line(text)
    TABLE_FILE.write_text(text + "\n")

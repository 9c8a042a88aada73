"""The console scripts answer `--help`, `--version` and `--check-config` without starting a
service: the installed commands, against the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from payout_core.cli import distribution_version
from tests.support.infra import Infra
from tests.support.processes import free_port

BIN = Path(sys.executable).parent
SCRIPTS = {
    "payout-api": "payout-api",
    "payout-processor": "payout-processor",
    "payout-admin": "payout-core",
}


def run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / script), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_describes_the_options_and_starts_nothing(script: str) -> None:
    proc = run(script, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {script}")
    for option in ("--version", "--check-config"):
        assert option in proc.stdout


@pytest.mark.parametrize(("script", "distribution"), SCRIPTS.items())
def test_version_is_the_installed_distribution_version(script: str, distribution: str) -> None:
    proc = run(script, "--version")
    assert proc.returncode == 0, proc.stderr
    expected = distribution_version(distribution)
    assert expected != "unknown"
    assert proc.stdout.strip() == f"{script} {expected}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_check_config_passes_when_settings_are_valid_and_both_services_answer(
    script: str, session_infra: Infra
) -> None:
    proc = run(script, "--check-config", env=session_infra.env())
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "configuration ok" in proc.stdout


def test_check_config_reports_every_bad_setting_on_a_line_of_its_own(
    session_infra: Infra,
) -> None:
    env = session_infra.env(API_PORT="eighty", LOG_LEVEL="loud", PROVIDER_FAILURE_RATE="2")
    proc = run("payout-api", "--check-config", env=env)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 3, proc.stderr
    for variable, line in zip(
        ("API_PORT", "LOG_LEVEL", "PROVIDER_FAILURE_RATE"), lines, strict=True
    ):
        assert line.startswith(f"payout-api: {variable} "), line


def test_check_config_reports_each_service_that_does_not_answer_without_its_password(
    session_infra: Infra,
) -> None:
    """PostgreSQL on a port where nothing listens, RabbitMQ with a wrong password."""
    env = session_infra.env(
        DATABASE_URL=f"postgresql://postgres:pg-secret@127.0.0.1:{free_port()}/payouts",
        AMQP_URL="amqp://guest:amqp-secret@127.0.0.1:5672/",
    )
    proc = run("payout-processor", "--check-config", env=env)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 2, proc.stderr
    assert lines[0].startswith("payout-processor: DATABASE_URL: PostgreSQL at 127.0.0.1:")
    assert lines[1].startswith("payout-processor: AMQP_URL: RabbitMQ at 127.0.0.1:5672")
    assert "secret" not in proc.stderr
    assert proc.stdout == ""


def test_check_config_of_admin_needs_no_subcommand(session_infra: Infra) -> None:
    """payout-admin requires a subcommand, except for --check-config (and --version)."""
    env = session_infra.env(DATABASE_URL=session_infra.database_url + "_missing")
    proc = run("payout-admin", "--check-config", env=env)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1

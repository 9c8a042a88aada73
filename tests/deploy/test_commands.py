"""The commands the images, the chart and docker-compose run are the project's console
scripts, installed in .venv/bin: what a container would start exists and is the same
everywhere. (tests/e2e starts these same commands as local processes against live services;
`support.deploy_commands()` is the list.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .support import console_scripts, deploy_commands

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def commands(rendered: Any) -> dict[str, list[str]]:
    return deploy_commands(rendered("default"))


def test_every_origin_is_covered(commands: dict[str, list[str]]) -> None:
    assert set(commands) == {
        "image:api",
        "image:processor",
        "chart:Deployment/payout-service-api/api",
        "chart:Deployment/payout-service-processor/processor",
        "chart:Job/payout-service-migrate/migrate",
        "chart:Pod/payout-service-test/helm-test",
        "chart:Deployment/payout-service-provider-sim/provider-sim",
        "chart:CronJob/payout-service-reconcile/reconcile",
        "chart:CronJob/payout-service-housekeeping/housekeeping",
        "compose:migrate",
        "compose:api",
        "compose:processor",
        "compose:provider-sim",
    }


def test_every_command_is_a_console_script_of_the_workspace(
    commands: dict[str, list[str]],
) -> None:
    scripts = console_scripts()
    for where, argv in commands.items():
        assert argv, f"{where}: empty command"
        assert argv[0] in scripts, f"{where}: {argv[0]} is no console script of a pyproject"
        executable = BIN / argv[0]
        assert executable.is_file(), f"{where}: {executable} is not installed (make install)"


def test_image_chart_and_compose_agree(commands: dict[str, list[str]]) -> None:
    for component in ("api", "processor"):
        image = commands[f"image:{component}"]
        assert commands[f"chart:Deployment/payout-service-{component}/{component}"] == image
        assert commands[f"compose:{component}"] == image
    assert commands["chart:Job/payout-service-migrate/migrate"] == ["payout-admin", "migrate"]
    assert commands["compose:migrate"] == commands["chart:Job/payout-service-migrate/migrate"]
    sim = commands["chart:Deployment/payout-service-provider-sim/provider-sim"]
    assert sim == commands["compose:provider-sim"] == ["payout-provider-sim"]
    for job in ("reconcile", "housekeeping"):
        assert commands[f"chart:CronJob/payout-service-{job}/{job}"] == ["payout-admin", job]


def test_admin_subcommands_exist() -> None:
    """`payout-admin migrate` (the hook Job) is a real subcommand of the installed script."""
    proc = subprocess.run(
        [str(BIN / "payout-admin"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for subcommand in (
        "migrate",
        "create-client",
        "list-clients",
        "disable-client",
        "create-key",
        "roll-key",
        "revoke-key",
        "list-keys",
        "audit",
        "reconcile",
        "attention",
        "housekeeping",
    ):
        assert subcommand in proc.stdout

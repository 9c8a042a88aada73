"""The developer tooling agrees with itself: the pre-commit hooks are exactly the commands of
`make lint` (same tools from .venv, nothing more, nothing less), and the configuration is one
pre-commit accepts."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from .support import ROOT

BIN = Path(sys.executable).parent


def make_lint_commands() -> list[str]:
    """The recipe lines of the Makefile's `lint` target, with $(BIN) spelled out."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return [line.strip().replace("$(BIN)/", ".venv/bin/") for line in recipe if line.strip()]


def hook_commands() -> list[str]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert all(repo["repo"] == "local" for repo in config["repos"]), "hooks use .venv's tools"
    for hook in hooks:
        assert hook["language"] == "system", hook["id"]
        assert hook["pass_filenames"] is False, f"{hook['id']}: checks the tree as make lint"
    return [hook["entry"] for hook in hooks]


def test_pre_commit_runs_exactly_what_make_lint_runs() -> None:
    commands = make_lint_commands()
    assert commands, "no lint recipe found"
    assert sorted(hook_commands()) == sorted(commands)


def test_pre_commit_config_is_valid() -> None:
    proc = subprocess.run(
        [str(BIN / "pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_hook_tool_is_installed_by_make_install() -> None:
    for command in hook_commands():
        executable = shlex.split(command)[0]
        assert executable.startswith(".venv/bin/"), command
        assert (BIN / Path(executable).name).is_file(), f"{executable}: not in .venv (uv.lock)"

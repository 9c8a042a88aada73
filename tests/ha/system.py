"""Running server programs as their own system users, in folders of the test's own."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
from pathlib import Path


def chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in (root, *(os.path.join(root, d) for d in dirs)):
            os.chown(name, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def as_user(user: str, command: list[str], env: dict[str, str] | None = None) -> list[str]:
    """`command` run as `user` with exactly `env` (and that user's HOME), in that HOME: the
    checkout may be in a folder only its owner can enter (a clone in a private temporary
    folder), and Erlang reads its working folder as it starts."""
    home = pwd.getpwnam(user).pw_dir
    variables = [
        f"{k}={v}" for k, v in {"HOME": home, "PATH": os.environ["PATH"], **(env or {})}.items()
    ]
    return ["runuser", "-u", user, "--", "env", "-i", "-C", home, *variables, *command]


def run(command: list[str], timeout: float = 60, check: bool = True) -> str:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[-6:])} exited {proc.returncode}: "
            f"{(proc.stderr or proc.stdout).strip()[-1500:]}"
        )
    return proc.stdout


def start(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """A long-running server in a process group of its own (killed as a group on teardown)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def kill_group(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGKILL) -> None:
    """Signal the process group we started (its own session), then reap it."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

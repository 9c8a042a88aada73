"""The services as real processes, exactly as `make run` and the images start them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.support.polling import eventually_sync

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


@dataclass
class Service:
    """One running console script with its own port and log file."""

    command: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    # Set when a test kills it on purpose: its non-zero exit is then expected.
    killed: bool = False
    _log: IO[bytes] | None = field(default=None, repr=False)
    _terminated: bool = field(default=False, repr=False)  # SIGTERM sent to this process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait_ready: bool = True, timeout: float = 30.0) -> Service:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self._terminated = False
        self.proc = subprocess.Popen(
            self.command,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.command[0]} exited: {self.log_tail()}")
            return http_status(self.url + "/readyz") == 200

        eventually_sync(ready, timeout=timeout, interval=0.1, what=f"{self.command[0]} ready")

    def terminate(self) -> None:
        """SIGTERM, once, without waiting (stop() waits): several services stop side by side."""
        assert self.proc is not None
        if self.proc.poll() is None and not self._terminated:
            self.proc.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (unless terminate() sent it), wait; the exit code."""
        assert self.proc is not None
        self.terminate()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if self._log is not None:
            self._log.close()
        return code

    def kill(self) -> None:
        assert self.proc is not None
        self.killed = True
        self.proc.kill()
        self.proc.wait()
        if self._log is not None:
            self._log.close()

    def restarted(self, **env: str) -> Service:
        """A stopped copy of this service on the same port, with env added (start it)."""
        return Service(self.command, {**self.env, **env}, self.log_path, self.port)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _service(script: str, port_variable: str, env: dict[str, str], log_path: Path) -> Service:
    """A console script listening on a free loopback port given through port_variable."""
    port = free_port()
    return Service(
        [str(BIN / script)],
        {**env, "API_HOST": "127.0.0.1", port_variable: str(port)},
        log_path,
        port,
    )


def api_service(env: dict[str, str], log_dir: Path, name: str = "api") -> Service:
    return _service("payout-api", "API_PORT", env, log_dir / f"{name}.log")


def processor_service(env: dict[str, str], log_dir: Path, name: str = "processor") -> Service:
    return _service("payout-processor", "PROCESSOR_HTTP_PORT", env, log_dir / f"{name}.log")


def provider_service(env: dict[str, str], log_dir: Path, name: str = "provider") -> Service:
    """payout-provider-sim; restarting it on the same port: `provider_service(...)` with
    PROVIDER_SIM_PORT set to the old one (see Service.restarted)."""
    return _service("payout-provider-sim", "PROVIDER_SIM_PORT", env, log_dir / f"{name}.log")


async def run_admin(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    """`payout-admin ARGS` with env added; its stdout (it must exit 0)."""
    admin = await asyncio.create_subprocess_exec(
        str(BIN / "payout-admin"),
        *args,
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(admin.communicate(), timeout=timeout)
    assert admin.returncode == 0, stderr.decode()[-2000:]
    return stdout.decode()

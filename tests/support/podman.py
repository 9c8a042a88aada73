"""podman with the project's containers.conf: building the images with
scripts/images-local.sh and the containers the e2e tests start from them."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.chart_pods import ChartContainer
from tests.support.polling import eventually_sync
from tests.support.processes import http_status

ROOT = Path(__file__).resolve().parents[2]
IMAGES_SCRIPT = ROOT / "scripts" / "images-local.sh"
CONTAINERS_CONF = os.environ.get("CONTAINERS_CONF") or str(
    ROOT / "deploy" / "podman" / "containers.conf"
)
# scripts/images-local.sh exits with this status where containers cannot be built or run.
CANNOT_BUILD_HERE = 3


class PodmanUnavailable(RuntimeError):
    """Containers cannot be built or run on this machine (the reason is the message)."""


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["podman", *args],
        env={**os.environ, "CONTAINERS_CONF": CONTAINERS_CONF},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}")
    return proc


@dataclass(frozen=True)
class ImageBuild:
    seconds: float
    output: str


def build_images(tag: str, timeout: float = 1200) -> ImageBuild:
    """Run scripts/images-local.sh (cached layers make a rebuild quick)."""
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(IMAGES_SCRIPT)],
        env={**os.environ, "CONTAINERS_CONF": CONTAINERS_CONF, "IMAGE_TAG": tag},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = proc.stderr + proc.stdout
    if proc.returncode == CANNOT_BUILD_HERE:
        reason = output.strip().splitlines()[-1]
        raise PodmanUnavailable(reason.split("cannot build or run containers here: ", 1)[-1])
    if proc.returncode != 0:
        raise AssertionError(f"scripts/images-local.sh failed ({proc.returncode}):\n{output}")
    return ImageBuild(time.monotonic() - started, output)


@dataclass
class Container:
    """A detached container started from a chart container's spec."""

    name: str
    spec: ChartContainer
    port: int | None
    started_at: float

    @classmethod
    def start(cls, spec: ChartContainer, name: str, port: int | None = None) -> Container:
        started_at = time.monotonic()
        podman("run", "--detach", *spec.podman_run_args(name))
        return cls(name, spec, port, started_at)

    @classmethod
    def run_to_end(
        cls, spec: ChartContainer, name: str, timeout: float = 120
    ) -> tuple[Container, int, str]:
        """Run a container attached until it exits (a Job's or a test Pod's): the container,
        its exit code and its output, read from its own stdout and stderr (podman's log file
        of a container that ran for a moment can still be empty when it has exited)."""
        container = cls(name, spec, None, time.monotonic())
        proc = podman("run", *spec.podman_run_args(name), timeout=timeout, check=False)
        return container, proc.returncode, proc.stdout + proc.stderr

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inspect(self) -> dict[str, Any]:
        return json.loads(podman("container", "inspect", self.name).stdout)[0]

    def running(self) -> bool:
        return bool(self.inspect()["State"]["Running"])

    def wait_ready(self, timeout: float = 60) -> float:
        """Poll /readyz until 200; the seconds from `podman run` to then."""

        def ready() -> bool:
            if not self.running():
                raise AssertionError(f"{self.name} exited:\n{self.logs()}")
            return http_status(self.url + "/readyz") == 200

        eventually_sync(ready, timeout=timeout, interval=0.1, what=f"{self.name} /readyz 200")
        return time.monotonic() - self.started_at

    def wait_exit(self, timeout: float = 120) -> int:
        return int(podman("wait", self.name, timeout=timeout).stdout.strip())

    def stop(self) -> tuple[int, float]:
        """`podman stop` with the pod's grace period (SIGTERM, SIGKILL after it): the exit
        code and the seconds it took."""
        started = time.monotonic()
        grace = self.spec.grace_seconds
        podman("stop", "--time", str(grace), self.name, timeout=grace + 30)
        return int(self.inspect()["State"]["ExitCode"]), time.monotonic() - started

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, *command, check=False)

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        return podman("healthcheck", "run", self.name, check=False)

    def logs(self, tail: int = 40) -> str:
        proc = podman("logs", "--tail", str(tail), self.name, check=False)
        return proc.stdout + proc.stderr

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", "--ignore", self.name, check=False)

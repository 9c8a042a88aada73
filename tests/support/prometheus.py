"""A real Prometheus server for the e2e tests: Debian's `prometheus` package, run on a free port
with a temporary configuration and storage, scraping the given targets every second."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.polling import eventually_sync
from tests.support.processes import ROOT, free_port, http_status

INSTALL_SCRIPT = ROOT / "scripts" / "install-prometheus.sh"


def find_tool(name: str) -> str | None:
    """`prometheus` or `promtool` on PATH, or where Debian's package puts it."""
    found = shutil.which(name)
    if found:
        return found
    debian = Path("/usr/bin") / name
    return str(debian) if debian.exists() else None


def install_tool(name: str) -> tuple[str | None, str]:
    """The tool's path, running scripts/install-prometheus.sh first if needed; else None and
    why."""
    found = find_tool(name)
    if found:
        return found, ""
    try:
        proc = subprocess.run(
            [str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=600, check=False
        )
        detail = (proc.stderr or proc.stdout).strip()[-500:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        detail = repr(exc)
    return find_tool(name), detail


@dataclass
class Prometheus:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @classmethod
    def start(
        cls,
        binary: str,
        workdir: Path,
        jobs: dict[str, str],
        rule_files: tuple[Path, ...] = (),
        timeout: float = 30.0,
    ) -> Prometheus:
        """Scrape `jobs` (job name -> host:port) every second, evaluate `rule_files`."""
        workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in jobs.items()
            ],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        port = free_port()
        log_path = workdir / "prometheus.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = cls(proc, f"http://127.0.0.1:{port}", log_path)

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {server.log_tail()}")
            return http_status(f"{server.url}/-/ready") == 200

        eventually_sync(ready, timeout=timeout, interval=0.1, what="prometheus ready")
        return server

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` of a successful answer."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict]:
        """An instant query's result vector."""
        return self.api("query", query=promql)["result"]

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

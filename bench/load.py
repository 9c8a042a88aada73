"""HTTP load: wrk with the Lua scripts in bench/lua/ (closed loop, N connections each with
one request in flight), and its one-line result parsed into a LoadResult."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"
RESULT_PREFIX = "BENCH_RESULT "
WRK_THREADS = 2  # one per core: wrk shares the two cores with the system under test


@dataclass
class LoadResult:
    connections: int
    requests: int
    duration_s: float
    rps: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def parse_wrk_output(stdout: str, connections: int) -> LoadResult:
    line = next((x for x in stdout.splitlines() if x.startswith(RESULT_PREFIX)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result line:\n{stdout[-2000:]}")
    raw = json.loads(line.removeprefix(RESULT_PREFIX))
    duration_s = raw["duration_us"] / 1e6
    return LoadResult(
        connections=connections,
        requests=raw["requests"],
        duration_s=round(duration_s, 2),
        rps=round(raw["requests"] / duration_s, 1) if duration_s else 0.0,
        non2xx=raw["non2xx"],
        socket_errors=raw["socket_errors"],
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
    )


class Wrk:
    """One wrk run against base_url with bench/lua/<script>.lua."""

    def __init__(
        self,
        base_url: str,
        script: str,
        *,
        connections: int,
        duration_s: float,
        env: dict[str, str],
    ) -> None:
        self._connections = connections
        self._command = [
            "wrk",
            f"-t{min(WRK_THREADS, connections)}",
            f"-c{connections}",
            f"-d{int(duration_s)}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA_DIR / f"{script}.lua"),
            base_url,
        ]
        self._env = {**os.environ, "BENCH_LUA_DIR": str(LUA_DIR), **env}
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self._command,
            env=self._env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    def interrupt(self) -> None:
        """End the run now (wrk prints its result on SIGINT)."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(signal.SIGINT)

    async def result(self) -> LoadResult:
        assert self._proc is not None
        stdout, _ = await self._proc.communicate()
        return parse_wrk_output(stdout.decode(errors="replace"), self._connections)

    async def run(self) -> LoadResult:
        await self.start()
        return await self.result()


def wrk_per_thread_quota(total: int, connections: int) -> int:
    """BENCH_QUOTA for `total` responses over wrk's threads."""
    threads = min(WRK_THREADS, connections)
    return -(-total // threads)

"""CPU seconds and peak RSS of each service, per phase of the bench.

A service is its process and any children (API workers): RSS is summed over them (pages that
forked workers share count once per process), PSS too (shared pages split between them: what
the service really costs), and the largest single RSS is kept. Sampled every SAMPLE_EVERY_S.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import psutil

SAMPLE_EVERY_S = 0.2
MB = 1024 * 1024


@dataclass
class Usage:
    cpu_s: float
    peak_rss_mb: float
    peak_pss_mb: float
    peak_process_rss_mb: float
    processes: int


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def _memory(procs: list[psutil.Process]) -> list[tuple[int, int]]:
    """(RSS, PSS) of each process."""
    sizes = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            info = proc.memory_full_info()
            sizes.append((info.rss, info.pss))
    return sizes


class ResourceSampler:
    """Call begin() when a phase starts and end() when it ends; sample() runs in between."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._cpu_start: dict[str, float] = {}
        self._peak_total: dict[str, int] = {}
        self._peak_pss: dict[str, int] = {}
        self._peak_one: dict[str, int] = {}
        self._count: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def begin(self) -> None:
        self._cpu_start = {name: _cpu_s(_tree(pid)) for name, pid in self._pids.items()}
        self._peak_total = dict.fromkeys(self._pids, 0)
        self._peak_pss = dict.fromkeys(self._pids, 0)
        self._peak_one = dict.fromkeys(self._pids, 0)
        self._count = dict.fromkeys(self._pids, 0)
        self._sample_once()
        self._task = asyncio.create_task(self._sample_forever())

    async def end(self) -> dict[str, Usage]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sample_once()
        return {
            name: Usage(
                cpu_s=round(_cpu_s(_tree(pid)) - self._cpu_start[name], 2),
                peak_rss_mb=round(self._peak_total[name] / MB, 1),
                peak_pss_mb=round(self._peak_pss[name] / MB, 1),
                peak_process_rss_mb=round(self._peak_one[name] / MB, 1),
                processes=self._count[name],
            )
            for name, pid in self._pids.items()
        }

    def _sample_once(self) -> None:
        for name, pid in self._pids.items():
            sizes = _memory(_tree(pid))
            if not sizes:
                continue
            rss = [r for r, _ in sizes]
            self._peak_total[name] = max(self._peak_total[name], sum(rss))
            self._peak_pss[name] = max(self._peak_pss[name], sum(p for _, p in sizes))
            self._peak_one[name] = max(self._peak_one[name], max(rss))
            self._count[name] = max(self._count[name], len(sizes))

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_EVERY_S)
            self._sample_once()

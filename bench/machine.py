"""What the whole machine spent on a scenario: its busy CPU time (every core, every process,
from /proc/stat) and, within it, PostgreSQL's and RabbitMQ's processes.

The services' own CPU (bench/resources.py) says what our code costs; this says what the
machine can carry. At a cost of C µs of machine CPU per item, N cores carry at most N / C items
a second, whatever any one process does: the bound a target is measured against when the
floor does less work than the service (it publishes nothing, so RabbitMQ's share is ours).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Any

import psutil

# Processes by the name the kernel gives them: PostgreSQL's backends and helpers, and the
# Erlang VM RabbitMQ runs in. A process that starts during a scenario counts from zero; one
# that exits during it is lost (the services' pooled connections outlive every scenario).
GROUPS = {"postgres": frozenset({"postgres"}), "rabbitmq": frozenset({"beam.smp"})}


@dataclass
class MachineUsage:
    cores: int
    busy_s: float  # CPU time of all cores that was not idle
    wall_s: float
    group_cpu_s: dict[str, float]

    @property
    def busy_share(self) -> float:
        """How busy all cores were, 0..1: near 1, the machine itself is the bound."""
        return self.busy_s / (self.cores * self.wall_s) if self.wall_s else 0.0

    def per_item_us(self, items: int) -> dict[str, int]:
        """Machine CPU per item, and each group's, in µs."""
        if not items:
            return {}
        out = {"machine": round(self.busy_s / items * 1e6)}
        out.update({name: round(s / items * 1e6) for name, s in self.group_cpu_s.items()})
        return out

    def figures(self, items: int) -> dict[str, Any]:
        """What a result records of it: CPU per item, how busy the cores were, how many."""
        return {
            "machine_cpu_us": self.per_item_us(items),
            "machine_busy": round(self.busy_share, 3),
            "cores": self.cores,
        }


def _busy_s() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _group_cpu() -> dict[int, tuple[str, float]]:
    found: dict[int, tuple[str, float]] = {}
    for proc in psutil.process_iter(["name"]):
        group = next((g for g, names in GROUPS.items() if proc.info["name"] in names), None)
        if group is None:
            continue
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = proc.cpu_times()
            found[proc.pid] = (group, times.user + times.system)
    return found


class MachineSampler:
    """begin() when a scenario starts, end() when it ends."""

    def __init__(self) -> None:
        self._busy = 0.0
        self._wall = 0.0
        self._groups: dict[int, tuple[str, float]] = {}

    def begin(self) -> None:
        self._groups = _group_cpu()
        self._busy = _busy_s()
        self._wall = time.monotonic()

    def end(self) -> MachineUsage:
        busy, wall = _busy_s() - self._busy, time.monotonic() - self._wall
        spent = dict.fromkeys(GROUPS, 0.0)
        for pid, (group, cpu_s) in _group_cpu().items():
            started = self._groups.get(pid)
            spent[group] += cpu_s - (started[1] if started else 0.0)
        return MachineUsage(
            cores=os.cpu_count() or 1,
            busy_s=round(busy, 3),
            wall_s=round(wall, 3),
            group_cpu_s={g: round(s, 3) for g, s in spent.items()},
        )

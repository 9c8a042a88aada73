"""py-spy profiles of a running service (`make bench PROFILE=1`): the raw collapsed stacks
under bench/results/, plus a short text summary of where the CPU samples land."""

from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter
from pathlib import Path

SAMPLES_PER_S = 100
PY_SPY = Path(sys.executable).parent / "py-spy"  # the dev dependency, beside this Python
_LINE_NUMBER = re.compile(r":\d+\)$")


async def record(pid: int, seconds: float, output: Path) -> asyncio.subprocess.Process:
    """Start sampling pid and its children (API workers) for `seconds`, without pausing them."""
    return await asyncio.create_subprocess_exec(
        str(PY_SPY),
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--nonblocking",
        "--rate",
        str(SAMPLES_PER_S),
        "--duration",
        str(int(seconds)),
        "--format",
        "raw",
        "--output",
        str(output),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


# Where a sample's CPU went, by the first of these found anywhere on its stack. Stacks under
# SQLAlchemy's greenlets often reach py-spy without their root, so layers are told by the
# frames they contain, not by their callers.
LAYERS = (
    ("database client (SQLAlchemy + asyncpg)", re.compile(r"sqlalchemy|asyncpg")),
    ("RabbitMQ client (aiormq, aio-pika)", re.compile(r"aiormq|aio_pika|pamqp")),
    ("validation (marshmallow)", re.compile(r"marshmallow")),
    ("logging (structlog)", re.compile(r"structlog|payout_core/logging")),
    ("metrics (prometheus_client)", re.compile(r"prometheus_client")),
    ("aiohttp and the request path's own code", re.compile(r"aiohttp")),
    ("other Python", re.compile(r"\(")),
)
NATIVE = "event loop and native code (no Python frame)"


def _frames(stack: str) -> list[str]:
    # 'process 12:"cmd";func (file.py:42);...' -> ["func (file.py)", ...]
    return [_LINE_NUMBER.sub(")", frame) for frame in stack.split(";")[1:]]


def _layer(frames: list[str]) -> str:
    text = ";".join(frames)
    return next((name for name, pattern in LAYERS if pattern.search(text)), NATIVE)


def summarize(raw: Path, top: int = 20) -> str:
    """Where the samples fall: by layer, then the functions on-CPU themselves and anywhere
    on the stack."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        total += count
        layers[_layer(frames)] += count
        if not frames:
            continue
        own[frames[-1]] += count
        for frame in set(frames):
            anywhere[frame] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "by layer:"]
    lines += [f"  {n / total:6.1%}  {layer}" for layer, n in layers.most_common()]
    lines += ["", "self time:"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "inclusive time:"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in anywhere.most_common(top)]
    return "\n".join(lines)

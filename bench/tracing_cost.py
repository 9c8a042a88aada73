"""The cost of tracing (docs/observability.md): the same drain of payouts through payout-api,
payout-processor and the simulated provider with tracing off, on at full sampling and on at
10%, exporting OTLP/HTTP to a sink in this process (as a collector would receive it).

The figure is CPU time per payout of each service (robust to a busy machine, unlike rates),
beside the drain rate and the spans received per payout (the sampling at work).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.pipeline import drain
from bench.resources import ResourceSampler
from bench.stack import bench_infra, running_stack

SAMPLER = "parentbased_traceidratio"
MODES: dict[str, dict[str, str]] = {
    "off": {},
    "on, 100%": {"OTEL_TRACES_SAMPLER": SAMPLER, "OTEL_TRACES_SAMPLER_ARG": "1.0"},
    "on, 10%": {"OTEL_TRACES_SAMPLER": SAMPLER, "OTEL_TRACES_SAMPLER_ARG": "0.1"},
}


class _SpanSink(ThreadingHTTPServer):
    """Accepts OTLP/HTTP protobuf exports on a free loopback port and counts their spans."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ExportHandler)
        self.spans = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ExportHandler(BaseHTTPRequestHandler):
    server: _SpanSink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = ExportTraceServiceRequest.FromString(body)
        count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        with self.server.lock:
            self.server.spans += count
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


async def _drain(stack: Any, payouts: int) -> dict[str, Any]:
    sampler = ResourceSampler(stack.pids)
    sampler.begin()
    drained = await drain(stack, payouts=payouts, connections=16, deadline_s=300)
    usage = await sampler.end()
    cpu_us = {
        service: round(u.cpu_s / drained.payouts * 1e6) if drained.payouts else 0
        for service, u in usage.items()
    }
    return {**asdict(drained), "cpu_us_per_payout": cpu_us}


def measure_tracing(payouts: int, log_dir: Path) -> dict[str, Any]:
    """Each mode on a database and vhost of its own; the spans are counted after the services
    stopped (their last export happens at exit)."""
    out: dict[str, Any] = {}
    for mode, env in MODES.items():
        sink = _SpanSink()
        thread = threading.Thread(target=sink.serve_forever, name="otlp-sink", daemon=True)
        thread.start()
        mode_env = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url} if env else {}
        label = mode.replace(", ", "_").replace("%", "")
        print(f"- tracing: drain {payouts} payouts, tracing {mode}", file=sys.stderr)
        try:
            with (
                bench_infra(f"tracing_{label}") as infra,
                running_stack(
                    infra, log_dir / f"tracing-{label}", processor=True, env=mode_env
                ) as stack,
            ):
                result = asyncio.run(_drain(stack, payouts))
        finally:
            sink.shutdown()
            sink.server_close()
        result["spans_per_payout"] = round(sink.spans / result["payouts"], 2)
        out[mode] = result
    return out


def table(tracing: dict[str, Any]) -> str:
    """One row per mode, with the CPU per payout relative to tracing off."""
    off = tracing["off"]["cpu_us_per_payout"]
    rows = [("Tracing", "Drain rate", "CPU per payout (vs off)", "Spans per payout")]
    for mode, result in tracing.items():
        cpu = result["cpu_us_per_payout"]
        cells = []
        for service, us in cpu.items():
            change = f" ({(us - off[service]) / off[service]:+.0%})" if off.get(service) else ""
            cells.append(f"{service} {us} us" + ("" if mode == "off" else change))
        rows.append(
            (
                mode,
                f"{result['drain_rate']:.0f} payouts/s",
                ", ".join(cells),
                f"{result['spans_per_payout']:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)

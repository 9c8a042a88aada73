"""The bench's one table (project figures beside the machine's limits), its JSON and its plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

# Targets of issue 7 for this 2-core machine.
POST_SHARE = 0.5
POST_P99_MS = 50.0
DRAIN_RATE = 2000.0
E2E_P99_MS = 100.0
RSS_MB = 150.0


def _fraction(value: float, limit: float) -> str:
    return f"{value / limit:.0%}" if limit else "-"


def _check(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _latency(r: dict[str, Any], keys: tuple[str, ...] = ("p50_ms", "p90_ms", "p99_ms")) -> str:
    return " / ".join(f"{r[k]:.1f}" for k in keys) + " ms"


def _non2xx(load: dict[str, Any]) -> str:
    failed = load["non2xx"] + load["socket_errors"]
    return f" ({failed} failed)" if failed else ""


def _unfinished(run: dict[str, Any]) -> str:
    return "" if run["complete"] else f" UNFINISHED: {run['terminal']:,} terminal"


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of the issue: the measured value, the bound and whether it is met."""
    limits, api, pipe = results["limits"], results["api"], results["pipeline"]
    post_share = api["post_64"]["rps"] / limits["pg_shape_64"]["tps"]
    rows = {
        "post_share": ("POST at 64 conn. >= 50% of PostgreSQL", post_share, POST_SHARE, ">="),
        "post_p99": ("POST p99 at 64 conn. <= 50 ms", api["post_64"]["p99_ms"], POST_P99_MS, "<="),
        "drain": ("drain >= 2,000 payouts/s", pipe["drain"]["drain_rate"], DRAIN_RATE, ">="),
        "e2e_p99": (
            "created->terminal p99 <= 100 ms at 200/s",
            pipe["fixed_rate"]["latency_p99_ms"],
            E2E_P99_MS,
            "<=",
        ),
    }
    # A run that did not finish meets no target about it, whatever its partial figures say.
    unfinished = {
        "drain": not pipe["drain"]["complete"],
        "e2e_p99": not pipe["fixed_rate"]["complete"],
    }
    for service, usage in results["resources"]["pipeline"].items():
        rows[f"rss_{service}"] = (
            f"{service} RSS <= 150 MB under load",
            usage["peak_rss_mb"],
            RSS_MB,
            "<=",
        )
    return {
        key: {
            "target": name,
            "value": round(value, 3),
            "bound": bound,
            "met": (value >= bound if op == ">=" else value <= bound)
            and not unfinished.get(key, False),
        }
        for key, (name, value, bound, op) in rows.items()
    }


def table(results: dict[str, Any]) -> str:
    limits, api, pipe, res = (
        results["limits"],
        results["api"],
        results["pipeline"],
        results["resources"],
    )
    pg16, pg64, full = limits["pg_shape_16"], limits["pg_shape_64"], limits["pg_full_64"]
    mq = limits["rabbitmq_confirms"]
    drain, paced = pipe["drain"], pipe["fixed_rate"]
    pipeline_limit = min(pg64["tps"], mq["rate"])
    met = {key: _check(t["met"]) for key, t in results["targets"].items()}
    rows: list[tuple[str, ...]] = [
        ("Measure", "Rate", "Latency p50 / p90 / p99", "CPU per item", "Limit", "Share", "Target"),
        ("PostgreSQL: payout+outbox tx, 16 cl.", f"{pg16['tps']:.0f} tx/s",
         f"avg {pg16['latency_avg_ms']:.1f} ms", "", "-", "-", ""),
        ("PostgreSQL: payout+outbox tx, 64 cl.", f"{pg64['tps']:.0f} tx/s",
         f"avg {pg64['latency_avg_ms']:.1f} ms", "", "-", "-", ""),
        ("PostgreSQL: 4-row POST tx, 64 cl.", f"{full['tps']:.0f} tx/s",
         f"avg {full['latency_avg_ms']:.1f} ms", "", "(info)", "-", ""),
        ("RabbitMQ: persistent + confirms", f"{mq['rate']:.0f} msg/s",
         f"{mq['in_flight']} in flight", "", "-", "-", ""),
    ]  # fmt: skip
    post_64_target = f"50%: {met['post_share']}, p99: {met['post_p99']}"
    for key, label, limit, target in (
        ("post_16", "POST /api/payouts/, 16 conn.", pg16, ""),
        ("post_64", "POST /api/payouts/, 64 conn.", pg64, post_64_target),
        ("get_one", "GET one payout, 64 conn.", None, ""),
        ("list", "GET list (50 rows), 64 conn.", None, ""),
    ):
        r = api[key]
        rows.append(
            (
                label,
                f"{r['rps']:.0f} req/s" + _non2xx(r),
                _latency(r),
                f"API {r['api_cpu_us_per_request']} us",
                f"{limit['tps']:.0f} tx/s" if limit else "-",
                _fraction(r["rps"], limit["tps"]) if limit else "-",
                target,
            )
        )
    rows += [
        (
            f"Drain {drain['payouts']:,} payouts" + _unfinished(drain),
            f"{drain['drain_rate']:.0f} payouts/s" + _non2xx(drain["http"]),
            f"in {drain['drain_s']:.1f} s; created at {drain['create_rate']:.0f}/s",
            " + ".join(f"{s} {us} us" for s, us in drain["cpu_us_per_payout"].items()),
            f"{pipeline_limit:.0f}/s (min PG, MQ)",
            _fraction(drain["drain_rate"], pipeline_limit),
            met["drain"],
        ),
        (
            f"Created->terminal at {paced['rate']:.0f}/s" + _unfinished(paced),
            f"{paced['payouts']} payouts"
            + (f" ({paced['non2xx']} non-2xx)" if paced["non2xx"] else ""),
            _latency(paced, ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms")),
            "",
            "-",
            "-",
            met["e2e_p99"],
        ),
    ]
    for phase, label in (("api", "API-only phase"), ("pipeline", "pipeline phase")):
        for service, usage in res[phase].items():
            rss_target = met.get(f"rss_{service}", "")
            rows.append(
                (
                    f"{service}: {label}",
                    f"{usage['cpu_s']:.1f} CPU s",
                    f"peak RSS {usage['peak_rss_mb']:.0f} MB, PSS {usage['peak_pss_mb']:.0f} MB"
                    f" ({usage['processes']} proc.)",
                    "",
                    "-",
                    "-",
                    rss_target if phase == "pipeline" else "",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


def plot(results: dict[str, Any], path: Path) -> None:
    limits, api, pipe = results["limits"], results["api"], results["pipeline"]
    fig, (rates, latency) = plt.subplots(1, 2, figsize=(14, 5.5))

    labels = [
        "PG limit 16",
        "PG limit 64",
        "MQ confirms",
        "POST 16",
        "POST 64",
        "GET one",
        "GET list",
        "drain",
    ]
    values = [
        limits["pg_shape_16"]["tps"],
        limits["pg_shape_64"]["tps"],
        limits["rabbitmq_confirms"]["rate"],
        api["post_16"]["rps"],
        api["post_64"]["rps"],
        api["get_one"]["rps"],
        api["list"]["rps"],
        pipe["drain"]["drain_rate"],
    ]
    colors = ["#999999"] * 3 + ["#1f77b4"] * 4 + ["#2ca02c"]
    bars = rates.barh(labels[::-1], values[::-1], color=colors[::-1])
    rates.bar_label(bars, fmt="%.0f", padding=3)
    rates.set_xlabel("per second (grey: this machine's limits)")
    rates.set_title("Throughput")
    rates.margins(x=0.15)

    groups = {
        "POST 16": (api["post_16"]["p50_ms"], api["post_16"]["p90_ms"], api["post_16"]["p99_ms"]),
        "POST 64": (api["post_64"]["p50_ms"], api["post_64"]["p90_ms"], api["post_64"]["p99_ms"]),
        "GET one": (api["get_one"]["p50_ms"], api["get_one"]["p90_ms"], api["get_one"]["p99_ms"]),
        "GET list": (api["list"]["p50_ms"], api["list"]["p90_ms"], api["list"]["p99_ms"]),
        "created→terminal\n@200/s": (
            pipe["fixed_rate"]["latency_p50_ms"],
            pipe["fixed_rate"]["latency_p90_ms"],
            pipe["fixed_rate"]["latency_p99_ms"],
        ),
    }
    width = 0.27
    for i, name in enumerate(("p50", "p90", "p99")):
        xs = [g + (i - 1) * width for g in range(len(groups))]
        latency.bar(xs, [v[i] for v in groups.values()], width, label=name)
    latency.set_xticks(range(len(groups)), list(groups))
    latency.axhline(POST_P99_MS, color="#d62728", linestyle=":", linewidth=1)
    latency.set_yscale("log")
    latency.set_ylabel("ms (log scale)")
    latency.set_title("Latency percentiles (dotted: 50 ms POST p99 target)")
    latency.legend()
    meta = results["meta"]
    fig.suptitle(f"make bench — {meta['started_at']} — commit {meta['git_commit']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

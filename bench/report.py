"""The bench's one table (project figures beside the machine's limits), its JSON and its plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

# Targets for this 2-core machine (issue 15), as shares of figures measured in the same run:
# the floor is bench/floor.py, the stack's own least cost per request.
POST_FLOOR_SHARE = 0.75
POST_KEY_FLOOR_SHARE = 0.60
POST_P99_MS = 50.0  # at 16 connections
GET_FLOOR_SHARE = 0.75
LIST_BEFORE_RPS = 370.0  # GET list before issue 15 (docs/performance.md)
DRAIN_RATE = 1000.0
SLOW_DRAIN_RATE = 200.0  # with a 1 s provider and default settings
E2E_P99_MS = 100.0
RSS_MB = 150.0
LATENCY_KEYS = ("p50_ms", "p90_ms", "p99_ms")


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs of one wrk scenario as one result: the floor's runs before and after the API's.

    Requests, time and CPU are pooled (the rate is all requests over all time, CPU per request
    weighted by requests); the latency percentiles are the runs' mean, for information (no
    target is set on the floor's latency). The runs are kept under "runs".
    """
    requests = sum(r["requests"] for r in runs)
    duration_s = sum(r["duration_s"] for r in runs)

    def weighted(values: list[float], by: str, total: float) -> float:
        return sum(v * r[by] for v, r in zip(values, runs, strict=True)) / total if total else 0

    machine = {k for r in runs for k in r["machine_cpu_us"]}
    latencies = {k: round(sum(r[k] for r in runs) / len(runs), 3) for k in LATENCY_KEYS}
    return {
        **runs[0],
        **latencies,
        "requests": requests,
        "duration_s": round(duration_s, 2),
        "rps": round(requests / duration_s, 1) if duration_s else 0.0,
        "non2xx": sum(r["non2xx"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
        "max_ms": max(r["max_ms"] for r in runs),
        "api_cpu_us_per_request": round(
            weighted([r["api_cpu_us_per_request"] for r in runs], "requests", requests)
        ),
        "machine_cpu_us": {
            k: round(weighted([r["machine_cpu_us"].get(k, 0) for r in runs], "requests", requests))
            for k in sorted(machine)
        },
        "machine_busy": round(
            weighted([r["machine_busy"] for r in runs], "duration_s", duration_s), 3
        ),
        "runs": runs,
    }


def _fraction(value: float, limit: float) -> str:
    return f"{value / limit:.0%}" if limit else "-"


def _check(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _latency(r: dict[str, Any], keys: tuple[str, ...] = LATENCY_KEYS) -> str:
    return " / ".join(f"{r[k]:.1f}" for k in keys) + " ms"


def _non2xx(load: dict[str, Any]) -> str:
    failed = load["non2xx"] + load["socket_errors"]
    return f" ({failed} failed)" if failed else ""


def _per_service(cpu_us: dict[str, int]) -> str:
    return " + ".join(f"{service} {us} us" for service, us in cpu_us.items())


def _unfinished(run: dict[str, Any]) -> str:
    return "" if run["complete"] else f" UNFINISHED: {run['terminal']:,} terminal"


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of the issue: the measured value, the bound and whether it is met."""
    api, pipe, floor = results["api"], results["pipeline"], results["floor"]
    slow = pipe["drain_slow_provider"]

    def share(key: str, floor_key: str) -> float:
        return api[key]["rps"] / floor[floor_key]["rps"] if floor[floor_key]["rps"] else 0.0

    rows = {
        "post_floor": (
            "POST at 64 conn. >= 75% of the floor",
            share("post_64", "post_64"),
            POST_FLOOR_SHARE,
            ">=",
        ),
        "post_key_floor": (
            "POST with Idempotency-Key at 64 conn. >= 60% of the floor",
            share("post_64_key", "post_64"),
            POST_KEY_FLOOR_SHARE,
            ">=",
        ),
        "post_p99": ("POST p99 at 16 conn. <= 50 ms", api["post_16"]["p99_ms"], POST_P99_MS, "<="),
        "get_floor": (
            "GET one at 64 conn. >= 75% of the floor",
            share("get_one", "get_one"),
            GET_FLOOR_SHARE,
            ">=",
        ),
        "list": (
            f"GET list >= 2 x {LIST_BEFORE_RPS:.0f} req/s",
            api["list"]["rps"],
            2 * LIST_BEFORE_RPS,
            ">=",
        ),
        "drain": ("drain >= 1,000 payouts/s", pipe["drain"]["drain_rate"], DRAIN_RATE, ">="),
        "drain_slow": (
            "drain with a 1 s provider, defaults >= 200/s",
            slow["drain_rate"],
            SLOW_DRAIN_RATE,
            ">=",
        ),
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
        "drain_slow": not slow["complete"],
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


def bounds(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """For each throughput target: the rate it needs, and the most this run's costs allow,
    whichever binds first: one service process uses one core at most (1 / its CPU per item),
    and the machine's cores carry at most cores / (the machine's CPU per item). `budget_us`:
    the service CPU per item that would reach the target, all else costing what it did."""
    api, floor, drained = results["api"], results["floor"], results["pipeline"]["drain"]
    needs = {
        "post_floor": ("post_64", POST_FLOOR_SHARE * floor["post_64"]["rps"]),
        "post_key_floor": ("post_64_key", POST_KEY_FLOOR_SHARE * floor["post_64"]["rps"]),
        "get_floor": ("get_one", GET_FLOOR_SHARE * floor["get_one"]["rps"]),
    }
    out = {}
    for key, (scenario, rate) in needs.items():
        r = api[scenario]
        out[key] = _bound(rate, r["rps"], r["api_cpu_us_per_request"], r, one_process=True)
    services_us = sum(drained["cpu_us_per_payout"].values())
    out["drain"] = _bound(
        DRAIN_RATE, drained["drain_rate"], services_us, drained, one_process=False
    )
    return out


def _bound(
    needed: float, got: float, service_us: float, run: dict[str, Any], *, one_process: bool
) -> dict[str, Any]:
    cores, machine_us = run["cores"], run["machine_cpu_us"].get("machine", 0)
    machine_ceiling = cores * 1e6 / machine_us if machine_us else 0.0
    process_ceiling = 1e6 / service_us if one_process and service_us else None
    # Held fixed: what the rest of the machine spent per item (database, broker, load tool).
    budgets = [cores * 1e6 / needed - (machine_us - service_us)]
    if one_process:
        budgets.append(1e6 / needed)
    return {
        "needed": round(needed),
        "got": round(got),
        "service_us": round(service_us),
        "machine_us": machine_us,
        "postgres_us": run["machine_cpu_us"].get("postgres", 0),
        "rabbitmq_us": run["machine_cpu_us"].get("rabbitmq", 0),
        "machine_busy": run["machine_busy"],
        "process_ceiling": None if process_ceiling is None else round(process_ceiling),
        "machine_ceiling": round(machine_ceiling),
        "budget_us": max(0, round(min(budgets))),
    }


BOUND_LABELS = {
    "post_floor": "POST, 64 conn. (API)",
    "post_key_floor": "POST with key, 64 (API)",
    "get_floor": "GET one, 64 conn. (API)",
    "drain": "Drain (API + processor + provider)",
}


def bounds_text(found: dict[str, dict[str, Any]]) -> str:
    """The bounds as a table: a target is out of reach while its budget is under what the
    service spends, whatever the machine's load."""
    rows: list[tuple[str, ...]] = [
        ("Throughput target", "Needs /s", "Got /s", "Cores busy", "One process carries",
         "Cores carry", "Machine CPU (PG, MQ)", "Service CPU", "Budget"),
    ]  # fmt: skip
    for key, b in found.items():
        process = b["process_ceiling"]
        rows.append(
            (
                BOUND_LABELS[key],
                f"{b['needed']:,}",
                f"{b['got']:,}",
                f"{b['machine_busy']:.0%}",
                "-" if process is None else f"{process:,}/s",
                f"{b['machine_ceiling']:,}/s",
                f"{b['machine_us']:,} us ({b['postgres_us']:,}, {b['rabbitmq_us']:,})",
                f"{b['service_us']:,} us",
                f"<= {b['budget_us']:,} us",
            )
        )
    return _render(rows)


def table(results: dict[str, Any]) -> str:
    limits, api, pipe, res, floor = (
        results["limits"],
        results["api"],
        results["pipeline"],
        results["resources"],
        results["floor"],
    )
    pg16, pg64, full = limits["pg_shape_16"], limits["pg_shape_64"], limits["pg_full_64"]
    mq = limits["rabbitmq_confirms"]
    drain, paced, slow = pipe["drain"], pipe["fixed_rate"], pipe["drain_slow_provider"]
    backlog = pipe["backlog"]
    pipeline_limit = min(pg64["tps"], mq["rate"])
    met = {key: _check(t["met"]) for key, t in results["targets"].items()}
    rows: list[tuple[str, ...]] = [
        ("Measure", "Rate", "Latency p50 / p90 / p99", "CPU per item", "Limit", "Share",
         "Floor", "Target"),
        ("PostgreSQL: payout+outbox tx, 16 cl.", f"{pg16['tps']:.0f} tx/s",
         f"avg {pg16['latency_avg_ms']:.1f} ms", "", "-", "-", "-", ""),
        ("PostgreSQL: payout+outbox tx, 64 cl.", f"{pg64['tps']:.0f} tx/s",
         f"avg {pg64['latency_avg_ms']:.1f} ms", "", "-", "-", "-", ""),
        ("PostgreSQL: 4-row POST tx, 64 cl.", f"{full['tps']:.0f} tx/s",
         f"avg {full['latency_avg_ms']:.1f} ms", "", "(info)", "-", "-", ""),
        ("RabbitMQ: persistent + confirms", f"{mq['rate']:.0f} msg/s",
         f"{mq['in_flight']} in flight", "", "-", "-", "-", ""),
    ]  # fmt: skip
    for key, label in (
        ("post_64", "Floor: POST, 64 conn."),
        ("get_one", "Floor: GET one, 64 conn."),
    ):
        r = floor[key]
        rows.append(
            (
                label,
                f"{r['rps']:.0f} req/s" + _non2xx(r),
                _latency(r),
                f"floor {r['api_cpu_us_per_request']} us",
                f"{pg64['tps']:.0f} tx/s" if key == "post_64" else "-",
                _fraction(r["rps"], pg64["tps"]) if key == "post_64" else "-",
                "100%",
                "",
            )
        )
    for key, label, limit, floor_key, target in (
        ("post_16", "POST /api/payouts/, 16 conn.", pg16, None, f"p99: {met['post_p99']}"),
        ("post_64", "POST /api/payouts/, 64 conn.", pg64, "post_64", met["post_floor"]),
        ("post_64_key", "POST with Idempotency-Key, 64", pg64, "post_64", met["post_key_floor"]),
        ("get_one", "GET one payout, 64 conn.", None, "get_one", met["get_floor"]),
        ("list", "GET list (50 rows), 64 conn.", None, None, met["list"]),
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
                _fraction(r["rps"], floor[floor_key]["rps"]) if floor_key else "-",
                target,
            )
        )
    rows += [
        (
            f"Drain {drain['payouts']:,} payouts" + _unfinished(drain),
            f"{drain['drain_rate']:.0f} payouts/s" + _non2xx(drain["http"]),
            f"in {drain['drain_s']:.1f} s; created at {drain['create_rate']:.0f}/s",
            _per_service(drain["cpu_us_per_payout"]),
            f"{pipeline_limit:.0f}/s (min PG, MQ)",
            _fraction(drain["drain_rate"], pipeline_limit),
            "-",
            met["drain"],
        ),
        (
            f"Backlog of {backlog['payouts']:,} drained" + _unfinished(backlog),
            f"{backlog['drain_rate']:.0f} payouts/s",
            f"in {backlog['drain_s']:.1f} s (processor started on it)",
            _per_service(backlog["cpu_us_per_payout"])
            + f"; machine {backlog['machine_cpu_us'].get('machine', 0)} us",
            "-",
            "-",
            "-",
            "(info)",
        ),
        (
            f"Drain {slow['payouts']:,}, 1 s provider, defaults" + _unfinished(slow),
            f"{slow['drain_rate']:.0f} payouts/s" + _non2xx(slow["http"]),
            f"in {slow['drain_s']:.1f} s",
            "",
            "-",
            "-",
            "-",
            met["drain_slow"],
        ),
        (
            f"Created->terminal at {paced['rate']:.0f}/s" + _unfinished(paced),
            f"{paced['payouts']} payouts"
            + (f" ({paced['non2xx']} non-2xx)" if paced["non2xx"] else ""),
            _latency(paced, ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms")),
            "",
            "-",
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
                    "-",
                    rss_target if phase == "pipeline" else "",
                )
            )
    return _render(rows)


def _render(rows: list[tuple[str, ...]]) -> str:
    """Aligned columns, the first row a header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


def plot(results: dict[str, Any], path: Path) -> None:
    limits, api, pipe = results["limits"], results["api"], results["pipeline"]
    fig, (rates, latency) = plt.subplots(1, 2, figsize=(14, 5.5))

    floor = results["floor"]
    labels = [
        "PG limit 16",
        "PG limit 64",
        "MQ confirms",
        "floor POST 64",
        "floor GET one",
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
        floor["post_64"]["rps"],
        floor["get_one"]["rps"],
        api["post_16"]["rps"],
        api["post_64"]["rps"],
        api["get_one"]["rps"],
        api["list"]["rps"],
        pipe["drain"]["drain_rate"],
    ]
    colors = ["#999999"] * 3 + ["#ff7f0e"] * 2 + ["#1f77b4"] * 4 + ["#2ca02c"]
    bars = rates.barh(labels[::-1], values[::-1], color=colors[::-1])
    rates.bar_label(bars, fmt="%.0f", padding=3)
    rates.set_xlabel("per second (grey: this machine's limits; orange: the stack's floor)")
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

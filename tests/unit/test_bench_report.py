"""make bench's report: the targets are shares of the floor measured in the same run, and a
run that did not finish meets no target about it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import report


def _load(rps: float, p99: float = 10.0) -> dict[str, Any]:
    return {
        "rps": rps,
        "p50_ms": 1.0,
        "p90_ms": 5.0,
        "p99_ms": p99,
        "non2xx": 0,
        "socket_errors": 0,
        "api_cpu_us_per_request": 100,
    }


def _drain(rate: float, complete: bool = True) -> dict[str, Any]:
    return {
        "payouts": 1000,
        "drain_rate": rate,
        "drain_s": 1.0,
        "create_rate": rate,
        "complete": complete,
        "terminal": 1000 if complete else 10,
        "http": {"non2xx": 0, "socket_errors": 0},
        "cpu_us_per_payout": {"api": 1, "processor": 2},
    }


def results(*, slow_complete: bool = True) -> dict[str, Any]:
    pg = {"tps": 4000.0, "latency_avg_ms": 2.0}
    usage = {"cpu_s": 1.0, "peak_rss_mb": 90.0, "peak_pss_mb": 80.0, "processes": 1}
    out: dict[str, Any] = {
        "meta": {"started_at": "now", "git_commit": "abc"},
        "limits": {
            "pg_shape_16": pg,
            "pg_shape_64": pg,
            "pg_full_64": pg,
            "rabbitmq_confirms": {"rate": 9000.0, "in_flight": 64},
        },
        "floor": {"post_64": _load(2000), "get_one": _load(4000)},
        "api": {
            "post_16": _load(1400, p99=40),
            "post_64": _load(1600),
            "post_64_key": _load(1100),
            "get_one": _load(2000),
            "list": _load(800),
        },
        "pipeline": {
            "drain": _drain(1200),
            "drain_slow_provider": _drain(300, complete=slow_complete),
            "fixed_rate": {
                "rate": 200,
                "payouts": 3000,
                "non2xx": 0,
                "complete": True,
                "latency_p50_ms": 20.0,
                "latency_p90_ms": 40.0,
                "latency_p99_ms": 80.0,
            },
        },
        "resources": {"api": {"api": usage}, "pipeline": {"api": usage, "processor": usage}},
    }
    out["targets"] = report.targets(out)
    return out


def test_targets_are_shares_of_the_floor():
    targets = results()["targets"]
    assert targets["post_floor"]["value"] == 0.8 and targets["post_floor"]["met"]
    assert targets["post_key_floor"]["value"] == 0.55 and not targets["post_key_floor"]["met"]
    assert targets["get_floor"]["value"] == 0.5 and not targets["get_floor"]["met"]
    assert targets["list"]["met"] and targets["post_p99"]["met"] and targets["drain_slow"]["met"]


def test_an_unfinished_drain_meets_no_target():
    assert not results(slow_complete=False)["targets"]["drain_slow"]["met"]


def test_the_table_and_plot_show_the_floor(tmp_path: Path):
    data = results()
    text = report.table(data)
    assert "Floor: POST, 64 conn." in text and "80%" in text and "MISSED" in text
    report.plot(data, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").stat().st_size > 10_000

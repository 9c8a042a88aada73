"""make bench's report: the targets are shares of the floor measured in the same run, and a
run that did not finish meets no target about it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import report


def _machine(machine_us: int, postgres_us: int = 0) -> dict[str, Any]:
    return {
        "machine_cpu_us": {"machine": machine_us, "postgres": postgres_us, "rabbitmq": 0},
        "machine_busy": 0.8,
        "cores": 2,
    }


def _load(rps: float, p99: float = 10.0, cpu_us: int = 100, machine_us: int = 400) -> dict:
    return {
        "rps": rps,
        "p50_ms": 1.0,
        "p90_ms": 5.0,
        "p99_ms": p99,
        "non2xx": 0,
        "socket_errors": 0,
        "api_cpu_us_per_request": cpu_us,
        **_machine(machine_us),
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
        "cpu_us_per_payout": {"api": 600, "processor": 400},
        **_machine(2500, postgres_us=800),
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
            "get_one": _load(2000, cpu_us=500, machine_us=600),
            "list": _load(800),
        },
        "pipeline": {
            "drain": _drain(1200),
            "drain_slow_provider": _drain(300, complete=slow_complete),
            "backlog": {
                "payouts": 1000,
                "terminal": 1000,
                "complete": True,
                "drain_s": 0.8,
                "drain_rate": 1250.0,
                "cpu_us_per_payout": {"processor": 400, "provider": 150},
                **_machine(1500),
            },
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
    out["bounds"] = report.bounds(out)
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
    assert "Backlog of 1,000 drained" in text and "1250 payouts/s" in text
    report.plot(data, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").stat().st_size > 10_000


def test_bounds_say_which_limit_binds_and_what_the_service_may_spend():
    found = results()["bounds"]
    get = found["get_floor"]  # needs 75% of 4,000 = 3,000/s
    assert get["needed"] == 3000 and get["got"] == 2000
    assert get["process_ceiling"] == 2000  # 500 µs a request: one core carries 2,000/s
    assert get["machine_ceiling"] == 3333  # 2 cores at 600 µs of machine CPU a request
    # One process at 3,000/s may spend 333 µs; the cores would allow 667 - 100 = 567.
    assert get["budget_us"] == 333
    drain = found["drain"]  # 1,000/s on 2 cores: 2,000 µs of machine CPU each at most
    assert drain["process_ceiling"] is None and drain["machine_ceiling"] == 800
    # The services spent 1,000 of 2,500 µs; the other 1,500 held fixed leaves 500.
    assert drain["service_us"] == 1000 and drain["budget_us"] == 500
    assert drain["postgres_us"] == 800


def test_the_bounds_table_names_every_throughput_target():
    text = report.bounds_text(results()["bounds"])
    assert all(label in text for label in report.BOUND_LABELS.values())
    assert "<= 333 us" in text and "2,000/s" in text


def _run(requests: int, duration_s: float, cpu_us: int, p99: float, machine_us: int) -> dict:
    return {
        **_load(requests / duration_s, p99=p99, cpu_us=cpu_us, machine_us=machine_us),
        "requests": requests,
        "duration_s": duration_s,
        "max_ms": p99 * 2,
    }


def test_the_floors_runs_are_pooled_around_the_apis():
    before, after = _run(30_000, 15.0, 200, 40.0, 600), _run(15_000, 10.0, 400, 80.0, 900)
    after["machine_busy"] = 0.5
    floor = report.pooled([before, after])
    # All requests over all time (the mean of the two rates would be 1,750/s), and CPU per
    # request weighted by requests (the mean would be 300 and 750 µs).
    assert floor["rps"] == 1800.0
    assert floor["requests"] == 45_000 and floor["duration_s"] == 25.0
    assert floor["api_cpu_us_per_request"] == 267
    assert floor["machine_cpu_us"]["machine"] == 700
    assert floor["machine_busy"] == 0.68  # weighted by time
    assert floor["p99_ms"] == 60.0 and floor["max_ms"] == 160.0
    assert floor["runs"] == [before, after]
    # The targets read the pooled rate as a single run's.
    figures = results()
    figures["floor"] = {"post_64": floor, "get_one": floor}
    figures["api"]["post_64"] = _load(1440)
    assert report.targets(figures)["post_floor"]["value"] == 0.8

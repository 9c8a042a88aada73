"""A real Prometheus scrapes both services while payouts flow: both targets up, every metric an
alert rule or a dashboard panel uses has data, from the job that should expose it, and the
rules evaluate cleanly against it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.traffic import run_every_outcome
from tests.observability.known_metrics import (
    RULES_FILE,
    base_metric,
    metrics_used_by_rules_and_dashboard,
)
from tests.support.polling import eventually_sync
from tests.support.prometheus import Prometheus, install_tool
from tests.support.tools import tool_missing

pytestmark = pytest.mark.e2e
JOBS = {"api": "payout-api", "processor": "payout-processor"}


@pytest.fixture
def prometheus(stack: Stack, tmp_path: Path) -> Iterator[Prometheus]:
    binary, detail = install_tool("prometheus")
    if binary is None:
        tool_missing(
            f"prometheus missing and scripts/install-prometheus.sh could not install it: {detail}"
        )
    targets = {
        JOBS["api"]: f"127.0.0.1:{stack.api.port}",
        JOBS["processor"]: f"127.0.0.1:{stack.processor.port}",
    }
    server = Prometheus.start(binary, tmp_path / "prometheus", targets, rule_files=(RULES_FILE,))
    yield server
    server.stop()


def jobs_with_data(prometheus: Prometheus, series: str) -> set[str]:
    result = prometheus.query(f'count by (job) ({{__name__="{series}"}})')
    return {sample["metric"]["job"] for sample in result}


def expected_jobs(series: str) -> set[str]:
    metric = base_metric(series)
    assert metric is not None, f"{series} is not a known metric"
    if metric.services == ("scrape",):
        return set(JOBS.values())
    return {JOBS[service] for service in metric.services}


def wrong_or_missing(prometheus: Prometheus, used: set[str]) -> dict[str, set[str]]:
    """Series name -> the jobs it has data from, where that is not the expected set."""
    found = {series: jobs_with_data(prometheus, series) for series in sorted(used)}
    return {series: jobs for series, jobs in found.items() if jobs != expected_jobs(series)}


async def test_prometheus_sees_both_services_and_every_metric_rules_and_panels_use(
    stack: Stack, prometheus: Prometheus
):
    # Up before the traffic: each counter then has a sample from before it moved.
    def both_up() -> bool:
        up = {s["metric"]["job"]: s["value"][1] for s in prometheus.query("up")}
        return up == {job: "1" for job in JOBS.values()}

    eventually_sync(both_up, timeout=15, interval=0.2, what="both targets up")
    async with aiohttp.ClientSession() as session:
        await run_every_outcome(session, stack)

    used = metrics_used_by_rules_and_dashboard()
    with contextlib.suppress(AssertionError):  # the assertion below names what is missing
        eventually_sync(
            lambda: not wrong_or_missing(prometheus, used),
            timeout=15,
            interval=0.5,
            what="data for every metric rules and panels use",
        )
    assert wrong_or_missing(prometheus, used) == {}

    # The rules run against real series: all evaluate cleanly, and the dead letter the
    # traffic caused fires its alert (no `for:` on that one).
    def rules_healthy_and_alert_firing() -> bool:
        rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
        firing = {
            a["labels"]["alertname"]
            for a in prometheus.api("alerts")["alerts"]
            if a["state"] == "firing"
        }
        return all(r["health"] == "ok" for r in rules) and "PayoutMessagesDeadLettered" in firing

    eventually_sync(
        rules_healthy_and_alert_firing, timeout=10, interval=0.5, what="rules ok, alert firing"
    )

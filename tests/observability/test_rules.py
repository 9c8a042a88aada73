"""Static checks of the alert rules and the Grafana dashboard (no services needed).

promtool comes from Debian's `prometheus` package (scripts/install-prometheus.sh, run by
`make test`); the promtool tests skip only when it cannot be installed.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.support.prometheus import install_tool
from tests.support.tools import tool_missing

from .known_metrics import (
    DASHBOARD_FILE,
    KNOWN_METRICS,
    MESSAGE_OUTCOMES,
    QUEUES,
    REPO_ROOT,
    RULES_FILE,
    RULES_TEST_FILE,
    WEBHOOK_OUTCOMES,
    alert_rules,
    base_metric,
    dashboard_expressions,
    dashboard_panels,
    known_series_names,
    load_dashboard,
    metric_names_in_expr,
    metrics_used_by_rules_and_dashboard,
    rule_expressions,
)

INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-prometheus.sh"
DOCS = REPO_ROOT / "docs" / "observability.md"
HELM_FILES = REPO_ROOT / "deploy" / "helm" / "payout-service" / "files"
STATUSES = ("pending", "processing", "processed", "failed", "cancelled")

ALERTS = [rule["alert"] for rule in alert_rules() if "alert" in rule]
EXPRESSIONS = {**{f"rule {k}": v for k, v in rule_expressions().items()}, **dashboard_expressions()}


# ------------------------------------------------------------------------- promtool


@pytest.fixture(scope="module")
def promtool() -> str:
    found, detail = install_tool("promtool")
    if not found:
        tool_missing(
            f"promtool missing and scripts/install-prometheus.sh could not install it: {detail}"
        )
    return found


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_check_rules(promtool: str) -> None:
    proc = run([promtool, "check", "rules", str(RULES_FILE)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in proc.stdout


def test_promtool_unit_tests_pass(promtool: str) -> None:
    proc = run([promtool, "test", "rules", RULES_TEST_FILE.name], cwd=RULES_TEST_FILE.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_dashboard_promql_parses(promtool: str, tmp_path: Path) -> None:
    """Each panel and variable expression, Grafana variables filled in, as a recording rule."""
    rules = [
        {"record": f"dashboard:expr_{i}", "expr": expr}
        for i, expr in enumerate(dashboard_expressions().values())
    ]
    path = tmp_path / "dashboard-exprs.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = run([promtool, "check", "rules", str(path)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_install_script_is_quick_when_installed(promtool: str) -> None:
    started = time.monotonic()
    proc = run([str(INSTALL_SCRIPT)])
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 5


# ------------------------------------------------------------------------ the rules


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_has_severity_annotations_and_runbook(alert: str) -> None:
    rule = next(r for r in alert_rules() if r.get("alert") == alert)
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    annotations = rule["annotations"]
    for key in ("summary", "description", "runbook_url"):
        assert annotations.get(key, "").strip(), f"{alert} lacks {key}"
    assert annotations["runbook_url"] == f"docs/observability.md#{alert.lower()}"


def github_anchors(markdown: str) -> set[str]:
    """Anchors GitHub generates for headings, plus explicit <a id=...> / {#id} ones."""
    anchors: set[str] = set(re.findall(r'<a (?:id|name)="([^"]+)"', markdown))
    anchors |= set(re.findall(r"\{#([\w-]+)\}", markdown))
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def test_runbook_anchors_exist_in_docs() -> None:
    anchors = github_anchors(DOCS.read_text())
    missing = [
        r["annotations"]["runbook_url"]
        for r in alert_rules()
        if r["annotations"]["runbook_url"].split("#", 1)[1] not in anchors
    ]
    assert not missing, f"runbook anchors not in docs/observability.md: {missing}"


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    tests = yaml.safe_load(RULES_TEST_FILE.read_text())["tests"]
    fires: set[str] = set()
    silent: set[str] = set()
    for group in tests:
        for case in group.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    assert set(ALERTS) - fires == set(), "alerts never shown firing"
    assert set(ALERTS) - silent == set(), "alerts never shown staying silent"
    assert (fires | silent) - set(ALERTS) == set(), "unit tests name unknown alerts"


# -------------------------------------------------------------------- the dashboard


def test_dashboard_shape() -> None:
    dash = load_dashboard()
    assert dash["uid"] == "payout-service"
    assert 36 <= dash["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"namespace", "job"} <= variables.keys()
    ids = [p["id"] for p in dashboard_panels()]
    assert len(ids) == len(set(ids)), "duplicate panel ids"


def test_dashboard_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard_panels():
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


@pytest.mark.parametrize(
    "panel", [p for p in dashboard_panels() if p["type"] != "row"], ids=lambda p: p["title"]
)
def test_panel_has_promql_targets_on_the_datasource_variable(panel: dict) -> None:
    assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert panel["targets"], "panel without targets"
    for target in panel["targets"]:
        assert target["expr"].strip(), "empty expression"
        assert target["datasource"]["uid"] == "${datasource}"
        assert metric_names_in_expr(target["expr"]), "expression selects no metric"
        # job- and namespace-agnostic: panels follow the variables, never a fixed job
        assert 'job=~"$job"' in target["expr"], target["expr"]
        assert 'namespace=~"$namespace"' in target["expr"], target["expr"]


def test_dashboard_shows_every_service_metric() -> None:
    on_dashboard: set[str] = set()
    for expr in dashboard_expressions().values():
        on_dashboard |= {m.name for n in metric_names_in_expr(expr) if (m := base_metric(n))}
    payout_metrics = {name for name in KNOWN_METRICS if name.startswith("payout_")}
    assert payout_metrics - on_dashboard == set(), "service metrics missing from the dashboard"
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total", "up"} <= on_dashboard


# ---------------------------------------------------------- metric names and labels


@pytest.mark.parametrize("where", sorted(EXPRESSIONS))
def test_expression_uses_only_known_metrics(where: str) -> None:
    names = metric_names_in_expr(EXPRESSIONS[where])
    assert names, f"{where}: no metric found in {EXPRESSIONS[where]!r}"
    unknown = names - known_series_names()
    assert not unknown, f"{where} uses metrics the services do not expose: {unknown}"


def test_metrics_used_is_the_union_and_all_known() -> None:
    used = metrics_used_by_rules_and_dashboard()
    assert used <= known_series_names()
    assert {
        "up",
        "payout_http_request_duration_seconds_bucket",
        "payout_messages_total",
        "payout_queue_depth",
        "payout_outbox_oldest_age_seconds",
    } <= used


LABEL_VALUES = {
    "outcome": set(MESSAGE_OUTCOMES) | set(WEBHOOK_OUTCOMES),
    "queue": set(QUEUES),
    "to": set(STATUSES),
    "from": set(STATUSES),
}
_MATCHER = re.compile(r'\b(outcome|queue|to|from)\s*(=~|=|!=|!~)\s*"([^"]*)"')


@pytest.mark.parametrize("where", sorted(EXPRESSIONS))
def test_label_matchers_use_real_label_values(where: str) -> None:
    for label, _op, value in _MATCHER.findall(EXPRESSIONS[where]):
        for alternative in value.split("|"):
            assert alternative in LABEL_VALUES[label], f"{where}: {label}={alternative!r}"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('rate(payout_http_requests_total{route="/api/payouts/{id}/", status=~"5.."}[5m])',
         {"payout_http_requests_total"}),
        ("sum by (job, le) (rate(a_bucket[5m])) / ignoring(le) group_left sum without (x) (b)",
         {"a_bucket", "b"}),
        ('histogram_quantile(0.99, x_bucket) > 1e3 and on (job) y offset 5m unless bool z',
         {"x_bucket", "y", "z"}),
        ('{__name__=~"payout_outbox_pending|up", job="x"} or absent(up{job=~".*"})',
         {"payout_outbox_pending", "up"}),
        ("max_over_time(m:recorded[1h:5m]) > Inf", {"m:recorded"}),
    ],
)  # fmt: skip
def test_metric_name_extraction(expr: str, expected: set[str]) -> None:
    assert metric_names_in_expr(expr) == expected


# ------------------------------------------------------------- copies and the docs


@pytest.mark.parametrize("name", [DASHBOARD_FILE.name, RULES_FILE.name])
def test_helm_chart_copies_are_identical(name: str) -> None:
    source = (DASHBOARD_FILE.parent / name).read_bytes()
    copy = HELM_FILES / name
    assert copy.exists(), f"{copy} missing: run `make observability-sync`"
    assert copy.read_bytes() == source, f"{copy} differs: run `make observability-sync`"


def test_docs_cover_every_metric_label_and_alert() -> None:
    text = DOCS.read_text()
    for metric in KNOWN_METRICS.values():
        if metric.name.startswith("payout_") or metric.name in (
            "up",
            "process_resident_memory_bytes",
        ):
            assert f"`{metric.name}`" in text, f"docs miss metric {metric.name}"
            for label in metric.labels:
                assert f"`{label}`" in text, f"docs miss label {label} of {metric.name}"
    for alert in ALERTS:
        assert re.search(rf"^#+ {alert}\b", text, re.M), f"docs miss a section for {alert}"
    for panel in dashboard_panels():
        if panel["type"] != "row":
            assert panel["title"] in text, f"docs miss panel {panel['title']!r}"

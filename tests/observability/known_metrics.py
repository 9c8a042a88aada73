"""The metrics the payout services expose, and the ones the alert rules and dashboard use.

One list, shared by the static checks in this folder and by end-to-end tests that ask a
real Prometheus whether every metric a rule or panel relies on returns data:

    from known_metrics import metrics_used_by_rules_and_dashboard
    for name in sorted(metrics_used_by_rules_and_dashboard()):
        ...  # query count({__name__="<name>"}) and expect a sample

Names are series names as Prometheus stores them: histograms appear as `<name>_bucket`,
`<name>_sum` and `<name>_count`, counters with their `_total` suffix.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY_DIR = REPO_ROOT / "deploy" / "observability"
RULES_FILE = OBSERVABILITY_DIR / "alert-rules.yaml"
RULES_TEST_FILE = OBSERVABILITY_DIR / "alert-rules.test.yaml"
DASHBOARD_FILE = OBSERVABILITY_DIR / "grafana-dashboard.json"


@dataclass(frozen=True)
class Metric:
    name: str
    type: str  # counter | gauge | histogram
    labels: tuple[str, ...]
    services: tuple[str, ...]  # api, processor, scrape


API, PROC, BOTH = ("api",), ("processor",), ("api", "processor")

KNOWN_METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("payout_http_requests_total", "counter", ("method", "route", "status"), BOTH),
        Metric("payout_http_request_duration_seconds", "histogram", ("method", "route"), BOTH),
        Metric("payout_created_total", "counter", ("currency",), API),
        Metric("payout_status_transitions_total", "counter", ("from", "to"), BOTH),
        Metric("payout_outbox_pending", "gauge", (), API),
        Metric("payout_outbox_oldest_age_seconds", "gauge", (), API),
        Metric("payout_publish_failures_total", "counter", (), API),
        Metric("payout_published_total", "counter", (), API),
        Metric("payout_messages_total", "counter", ("outcome",), PROC),
        Metric("payout_processing_duration_seconds", "histogram", (), PROC),
        Metric("payout_end_to_end_seconds", "histogram", (), PROC),
        Metric("payout_processor_inflight", "gauge", (), PROC),
        Metric("payout_queue_depth", "gauge", ("queue",), PROC),
        Metric("payout_queue_consumers", "gauge", ("queue",), PROC),
        Metric("payout_deferrals_total", "counter", ("reason",), PROC),
        Metric("payout_reconciled_total", "counter", ("action",), PROC),
        Metric("payout_unfinished", "gauge", ("state",), BOTH),
        Metric("payout_housekeeping_deleted_total", "counter", ("table",), PROC),
        Metric("payout_housekeeping_runs_total", "counter", ("result",), PROC),
        Metric("payout_webhook_deliveries_total", "counter", ("outcome",), PROC),
        Metric("payout_webhook_delivery_duration_seconds", "histogram", (), PROC),
        Metric("payout_webhook_pending", "gauge", (), PROC),
        Metric("payout_webhook_failing_endpoint_seconds", "gauge", (), PROC),
        # prometheus-client's default process, platform and gc collectors
        Metric("process_resident_memory_bytes", "gauge", (), BOTH),
        Metric("process_virtual_memory_bytes", "gauge", (), BOTH),
        Metric("process_cpu_seconds_total", "counter", (), BOTH),
        Metric("process_start_time_seconds", "gauge", (), BOTH),
        Metric("process_open_fds", "gauge", (), BOTH),
        Metric("process_max_fds", "gauge", (), BOTH),
        Metric(
            "python_info",
            "gauge",
            ("implementation", "major", "minor", "patchlevel", "version"),
            BOTH,
        ),
        Metric("python_gc_objects_collected_total", "counter", ("generation",), BOTH),
        Metric("python_gc_objects_uncollectable_total", "counter", ("generation",), BOTH),
        Metric("python_gc_collections_total", "counter", ("generation",), BOTH),
        # written by Prometheus for every scrape target
        Metric("up", "gauge", (), ("scrape",)),
    )
}

MESSAGE_OUTCOMES = (
    "processed",
    "failed",
    "skipped_duplicate",
    "retried",
    "dead_lettered",
    "malformed",
)
WEBHOOK_OUTCOMES = ("succeeded", "failed", "given_up")
QUEUES = ("payouts.process", "payouts.dead")

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def known_series_names() -> set[str]:
    """Every series name the services (and the scrape) produce."""
    names: set[str] = set()
    for m in KNOWN_METRICS.values():
        if m.type == "histogram":
            names.update(m.name + s for s in HISTOGRAM_SUFFIXES)
        else:
            names.add(m.name)
    return names


def base_metric(series_name: str) -> Metric | None:
    """The declared metric a series name belongs to (histogram suffixes resolved)."""
    if series_name in KNOWN_METRICS:
        return KNOWN_METRICS[series_name]
    for suffix in HISTOGRAM_SUFFIXES:
        if series_name.endswith(suffix):
            m = KNOWN_METRICS.get(series_name.removesuffix(suffix))
            if m is not None and m.type == "histogram":
                return m
    return None


# ----------------------------------------------------------------------------- PromQL

# Words that look like identifiers in PromQL but never name a metric.
_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "atan2", "start", "end",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_TOKEN = re.compile(r"(?P<num>\d[\w.]*)|(?P<ident>[A-Za-z_:][\w:]*)(?P<call>\s*\()?")
_GRAFANA_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_PLAIN_NAME = re.compile(r"[A-Za-z_:][\w:]*")

# What the Grafana variables stand for when an expression is checked outside Grafana.
GRAFANA_SUBSTITUTES = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "namespace": ".*",
    "job": ".*",
}


def substitute_grafana_variables(expr: str) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in GRAFANA_SUBSTITUTES:
            raise ValueError(f"unknown Grafana variable ${name} in {expr!r}")
        return GRAFANA_SUBSTITUTES[name]

    return _GRAFANA_VAR.sub(repl, expr)


def metric_names_in_expr(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (a small lexer, not a full parser).

    Handles string literals, label matchers (including `{__name__=~"a|b"}`), range and
    subquery brackets, grouping clauses, function calls, keywords, numbers and durations.
    """
    names: set[str] = set()
    for op, value in _NAME_MATCHER.findall(expr):
        parts = value.split("|") if op == "=~" else [value]
        for part in parts:
            if not _PLAIN_NAME.fullmatch(part):
                raise ValueError(f"__name__ matcher too clever to check: {value!r} in {expr!r}")
            names.add(part)
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # ranges, subqueries
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\boffset\s+-?\w+", " ", text)
    for m in _TOKEN.finditer(text):
        ident = m.group("ident")
        if ident is None or m.group("call") or ident.lower() in _KEYWORDS:
            continue
        names.add(ident)
    return names


def grafana_variable_selector(query: str) -> str:
    """The PromQL inside a Grafana Prometheus variable query."""
    q = query.strip()
    m = re.fullmatch(r"label_values\((.*),\s*[A-Za-z_]\w*\s*\)", q, re.S)
    if m:
        return m.group(1)
    m = re.fullmatch(r"(?:query_result|label_names)\((.*)\)", q, re.S)
    if m:
        return m.group(1)
    m = re.fullmatch(r"metrics\((.*)\)", q, re.S)
    if m:
        raise ValueError(f"metrics() variable queries are not checkable: {query!r}")
    return q


# ------------------------------------------------------------------------ the files


@cache
def load_rules() -> dict:
    return yaml.safe_load(RULES_FILE.read_text())


@cache
def load_dashboard() -> dict:
    return json.loads(DASHBOARD_FILE.read_text())


def alert_rules() -> list[dict]:
    return [rule for group in load_rules()["groups"] for rule in group["rules"]]


def rule_expressions() -> dict[str, str]:
    """Alert (or record) name -> expression."""
    return {rule.get("alert") or rule["record"]: rule["expr"] for rule in alert_rules()}


def dashboard_panels(panels: list[dict] | None = None) -> list[dict]:
    """Every panel, rows' collapsed children included."""
    out: list[dict] = []
    for panel in load_dashboard()["panels"] if panels is None else panels:
        out.append(panel)
        out.extend(dashboard_panels(panel.get("panels", [])))
    return out


def dashboard_expressions() -> dict[str, str]:
    """'panel title [refId]' or 'variable <name>' -> PromQL, Grafana variables substituted."""
    exprs: dict[str, str] = {}
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            if target.get("expr"):
                key = f"{panel['title']} [{target.get('refId', '?')}]"
                exprs[key] = substitute_grafana_variables(target["expr"])
    for var in load_dashboard().get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]
            query = query.get("query", "") if isinstance(query, dict) else query
            exprs[f"variable {var['name']}"] = substitute_grafana_variables(
                grafana_variable_selector(query)
            )
    return exprs


def metrics_used_by_rules_and_dashboard() -> set[str]:
    """Series names that some alert rule, dashboard panel or dashboard variable selects."""
    used: set[str] = set()
    for expr in [*rule_expressions().values(), *dashboard_expressions().values()]:
        used |= metric_names_in_expr(expr)
    return used

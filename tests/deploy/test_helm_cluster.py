"""The chart for a cluster (issue 12): the multi-host URLs pass through unchanged, the API
waits out its preStop sleep before SIGTERM, and NOTES.txt states the connection budget."""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

from .support import RELEASE, helm, render, render_error, template_args

DATABASE = (
    "postgresql://payouts:pw@pg-0:5432,pg-1:5432,pg-2:5432/payouts?target_session_attrs=read-write"
)
AMQP = "amqp://payouts:pw@rmq-0:5672/,amqp://payouts:pw@rmq-1:5672/,amqp://payouts:pw@rmq-2:5672/"


def _values(**values: object) -> Path:
    handle = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)  # noqa: SIM115
    with handle:
        json.dump(values, handle)  # JSON is YAML
    return Path(handle.name)


def test_cluster_urls_reach_the_pods_unchanged(helm_bin: str) -> None:
    docs = render([_values(secrets={"databaseUrl": DATABASE, "amqpUrl": AMQP})])
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    secret = secrets[RELEASE]
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded["DATABASE_URL"] == DATABASE
    assert decoded["AMQP_URL"] == AMQP


def test_the_api_sleeps_before_sigterm_and_the_grace_period_covers_it(helm_bin: str) -> None:
    docs = render([_values(secrets={"databaseUrl": DATABASE, "amqpUrl": AMQP})])
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    api = deployments[f"{RELEASE}-api"]["spec"]["template"]["spec"]
    (container,) = api["containers"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    (processor,) = deployments[f"{RELEASE}-processor"]["spec"]["template"]["spec"]["containers"]
    assert "lifecycle" not in processor  # no Service routes requests to it
    error = render_error(sets=["api.preStopSleepSeconds=15"])  # 15 + 20 >= 30
    assert "preStopSleepSeconds" in error


def _notes(*sets: str) -> str:
    args = template_args(sets=sets)
    args[0] = "install"
    out = helm(*args, "--dry-run=client", "--set-string", "secrets.databaseUrl=postgresql://x@pg:5432/payouts",
               "--set-string", "secrets.amqpUrl=amqp://x@rmq:5672/").stdout  # fmt: skip
    return out.partition("NOTES:")[2]


def test_notes_warn_when_the_pods_can_exceed_max_connections(helm_bin: str) -> None:
    fits = _notes("connectionBudget.maxConnections=500")
    assert "PostgreSQL connections" not in fits
    exceeds = _notes("api.autoscaling.enabled=true", "connectionBudget.maxConnections=200")
    assert "WARNING: the pods can open 280 PostgreSQL connections" in exceeds
    assert "more than the 190 available" in exceeds
    assert "PgBouncer" in exceeds

"""values.yaml, values.schema.json and the chart README: the schema accepts every shipped
values file and rejects bad values (helm template fails), and every value is documented.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from . import values_doc
from .support import CHART, CI_VALUES, KIND_VALUES, render_error

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())


def merged(overlay: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of an overlay onto the defaults (maps merge, the rest replaces)."""

    def merge(base: Any, top: Any) -> Any:
        if isinstance(base, dict) and isinstance(top, dict):
            result = dict(base)
            for key, value in top.items():
                result[key] = merge(base.get(key), value) if key in base else value
            return result
        return copy.deepcopy(top)

    return merge(DEFAULTS, overlay)


def schema_errors(values: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(values)]


def test_schema_is_a_valid_draft7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["additionalProperties"] is False


def test_schema_is_strict_at_every_level_of_the_chart_own_values() -> None:
    """Every object of the schema that lists properties rejects unknown ones."""
    loose = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "properties" in node and node.get("additionalProperties") is not False:
                loose.append(where)
            for key, child in node.items():
                walk(child, f"{where}/{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{where}/{i}")

    walk(SCHEMA, "#")
    # Kubernetes objects only partly pinned: topology spread constraints (labelSelector and
    # newer fields pass through) and extraEnv items (EnvVar: only `name` is checked).
    assert loose == [
        "#/definitions/topologySpreadConstraints/items",
        "#/properties/extraEnv/items",
    ]


@pytest.mark.parametrize(
    "path", [*CI_VALUES, KIND_VALUES], ids=lambda p: str(p.relative_to(p.parents[1]))
)
def test_shipped_values_files_satisfy_the_schema(path: Path) -> None:
    assert schema_errors(merged(yaml.safe_load(path.read_text()))) == []


def test_defaults_satisfy_the_schema() -> None:
    assert schema_errors(DEFAULTS) == []


# Each case: --set arguments and a fragment of the error helm must print.
BAD_VALUES = {
    "unknown top-level key": (["replicas=3"], "additional properties 'replicas' not allowed"),
    "unknown nested key": (["api.replicas=3"], "additional properties 'replicas' not allowed"),
    "port as a string": (["api.port=http"], "/api/port"),
    "port out of range": (["processor.port=70000"], "/processor/port"),
    "negative replicas": (["api.replicaCount=-1"], "/api/replicaCount"),
    "unknown log level": (["config.logLevel=verbose"], "/config/logLevel"),
    "unknown log format": (["config.logFormat=xml"], "/config/logFormat"),
    "failure rate above 1": (["config.providerFailureRate=1.5"], "/config/providerFailureRate"),
    "provider URL not http": (["config.providerUrl=ftp://bank"], "/config/providerUrl"),
    "short bootstrap key": (["secrets.apiBootstrapKey=short"], "/secrets/apiBootstrapKey"),
    "database URL scheme": (["secrets.databaseUrl=mysql://db/payouts"], "/secrets/databaseUrl"),
    "broker URL scheme": (["secrets.amqpUrl=http://mq:5672/"], "/secrets/amqpUrl"),
    "pull policy": (["image.pullPolicy=Sometimes"], "/image/pullPolicy"),
    "image digest": (["api.image.digest=latest"], "/api/image/digest"),
    "service type": (["api.service.type=ExternalName"], "/api/service/type"),
    "ingress path": (
        ["api.ingress.hosts[0].paths[0].path=api"],
        "/api/ingress/hosts/0/paths/0/path",
    ),
    "empty command word": (["migration.command={}"], "/migration/command"),
    "probe period zero": (
        ["api.livenessProbe.periodSeconds=0"],
        "/api/livenessProbe/periodSeconds",
    ),
    "scrape interval": (
        ["metrics.serviceMonitor.interval=often"],
        "/metrics/serviceMonitor/interval",
    ),
    "boolean as string": (["networkPolicy.enabled=yes"], "/networkPolicy/enabled"),
    "keda target zero": (["processor.keda.queueLength=0"], "/processor/keda/queueLength"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_schema_rejects_bad_values(helm_bin: str, case: str) -> None:
    sets, fragment = BAD_VALUES[case]
    error = render_error(sets=sets)
    assert fragment in error, error


# Values the schema allows but the templates refuse, with a message that says why.
BAD_COMBINATIONS = {
    "keda and processor HPA together": (
        ["processor.keda.enabled=true", "processor.autoscaling.enabled=true"],
        "mutually exclusive",
    ),
    "grace period shorter than the drain": (
        ["config.shutdownGraceSeconds=45"],
        "must be greater than config.shutdownGraceSeconds",
    ),
    "HPA without a metric": (
        [
            "api.autoscaling.enabled=true",
            "api.autoscaling.targetCPUUtilizationPercentage=null",
        ],
        "api.autoscaling needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage",
    ),
    "no payout provider at all": (
        ["providerSim.enabled=false"],
        "config.providerUrl is required when providerSim.enabled is false",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_COMBINATIONS))
def test_templates_refuse_contradictory_values(helm_bin: str, case: str) -> None:
    sets, fragment = BAD_COMBINATIONS[case]
    error = render_error(sets=sets)
    assert fragment in error, error


# ----------------------------------------------------------------------- documentation


def test_every_value_is_documented() -> None:
    documented = set(values_doc.documented_keys((CHART / "values.yaml").read_text()))
    missing = [
        leaf
        for leaf in values_doc.leaf_paths(DEFAULTS)
        if not any(leaf == d or leaf.startswith(f"{d}.") for d in documented)
    ]
    assert missing == [], "add a `# --` comment to these keys of values.yaml"


def test_every_documented_value_is_in_the_schema() -> None:
    for path in values_doc.documented_keys((CHART / "values.yaml").read_text()):
        node = SCHEMA
        for part in path.split("."):
            if "$ref" in node:
                node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
            assert part in node.get("properties", {}), f"{path}: {part} missing in the schema"
            node = node["properties"][part]


def test_readme_values_table_matches_values_yaml() -> None:
    assert values_doc.readme_table() == values_doc.table(), (
        "the chart README is stale: run .venv/bin/python -m tests.deploy.values_doc --write"
    )


def test_readme_mentions_every_ci_values_file() -> None:
    readme = (CHART / "README.md").read_text()
    for path in CI_VALUES:
        assert path.name in readme

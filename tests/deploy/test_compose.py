"""docker-compose.yml: valid against the compose-spec JSON schema (vendored in
tests/deploy/schemas, see its README), wired like the chart (one-shot migration first,
healthchecks, depends_on conditions, same environment variables, same hardening), every
variable in .env.example, and the observability profile: Prometheus scraping what exists,
Grafana provisioned from files with that Prometheus and the shipped dashboard.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .support import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    ROOT,
    Manifests,
    compose_file,
    dockerfile_stages,
    image_command,
)

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text())
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::?-(?P<default>[^}]*))?\}")
APP_SERVICES = ("migrate", "api", "processor", "provider-sim")


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and $$ (a literal $) substitution."""
    text = VARIABLE.sub(lambda m: env.get(m["name"]) or (m["default"] or ""), text)
    return text.replace("$$", "$")


def validator() -> jsonschema.Draft7Validator:
    # The schema declares draft-07 (as "https://json-schema.org/draft-07/schema", without the
    # trailing "#" jsonschema looks up), so the validator class is named explicitly.
    assert "draft-07" in SCHEMA["$schema"]
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    return jsonschema.Draft7Validator(
        SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def schema_errors(document: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator().iter_errors(document)]


# ------------------------------------------------------------------------------- schema


def test_vendored_schema_is_the_compose_specification() -> None:
    assert SCHEMA["title"] == "Compose Specification"
    assert {"services", "volumes", "networks", "name", "include"} <= set(SCHEMA["properties"])
    readme = (Path(__file__).parent / "schemas" / "README.md").read_text()
    assert "compose-spec.json" in readme and "npm" in readme


def test_compose_file_validates_as_written() -> None:
    assert schema_errors(compose_file()) == []


@pytest.mark.parametrize("env", ["defaults", ".env.example"])
def test_compose_file_validates_after_interpolation(env: str) -> None:
    values = {} if env == "defaults" else env_example()
    document = yaml.safe_load(interpolate(COMPOSE_FILE.read_text(), values))
    assert schema_errors(document) == []
    ports = [p for s in document["services"].values() for p in s.get("ports", [])]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports), "publish on loopback only"


def test_schema_rejects_a_broken_compose_file() -> None:
    document = compose_file()
    document["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_done"
    document["services"]["processor"]["restart_policy"] = "always"
    errors = schema_errors(document)
    assert any("service_done" in e for e in errors), errors
    assert any("restart_policy" in e for e in errors), errors


# ----------------------------------------------------------------------------- services


def test_services_and_images() -> None:
    services = compose_file()["services"]
    assert set(services) == {
        *("postgres", "rabbitmq", "migrate", "api", "processor", "provider-sim"),
        *("prometheus", "grafana"),
    }
    assert services["postgres"]["image"] == "postgres:16"
    assert re.fullmatch(r"rabbitmq:3\.\d+-management", services["rabbitmq"]["image"])
    assert services["prometheus"]["profiles"] == ["observability"]
    assert services["grafana"]["profiles"] == ["observability"]
    targets = {s.name for s in dockerfile_stages()}
    for name in APP_SERVICES:
        build = services[name]["build"]
        assert build["context"] == "."
        assert build["target"] in targets


def test_migration_is_one_shot_and_runs_before_the_services() -> None:
    services = compose_file()["services"]
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["entrypoint"] + migrate["command"] == ["payout-admin", "migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "processor"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["rabbitmq"]["condition"] == "service_healthy"
        assert "entrypoint" not in services[name], "the image's own ENTRYPOINT runs"
        assert image_command(services[name]["build"]["target"]) == [f"payout-{name}"]


def test_every_awaited_service_has_a_healthcheck() -> None:
    services = compose_file()["services"]
    for service in services.values():
        for dependency, spec in service.get("depends_on", {}).items():
            if spec["condition"] == "service_healthy":
                check = services[dependency].get("healthcheck")
                assert check and check["test"][0] in ("CMD", "CMD-SHELL"), dependency
    for name, port in (("api", 8000), ("processor", 8001)):
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and f"127.0.0.1:{port}/healthz" in test[-1]


def test_application_containers_are_hardened_like_in_kubernetes() -> None:
    services = compose_file()["services"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["read_only"] is True, name
        assert service["tmpfs"] == ["/tmp"], name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert "user" not in service, "the image's non-root USER applies"


# Tuning knobs with a sane default in the code that compose may leave out (PUBLIC_BASE_URL:
# the processor has no links to make).
TUNING_KNOBS = {
    "OUTBOX_POLL_INTERVAL_MS",
    "DB_POOL_SIZE",
    "API_WORKERS",
    "API_KEY_CACHE_TTL_S",
    "PUBLIC_BASE_URL",
    "RECONCILE_MAX_REENQUEUES",
    "HOUSEKEEPING_INTERVAL_S",
    "HOUSEKEEPING_BATCH",
    "OUTBOX_KEEP_PUBLISHED_S",
    "DEAD_LETTER_KEEP_S",
    "PROVIDER_SIM_RETENTION_S",
    "PROVIDER_SIM_SLOW_ANSWER_MS",
    "WEBHOOK_RETRY_SCHEDULE_S",
    "WEBHOOK_DISABLE_AFTER_S",
    "WEBHOOK_SECRET_OVERLAP_S",
    "WEBHOOK_EVENT_RETENTION_S",
    # Test-only: off unless set, and never set by the stack.
    "PROVIDER_SIM_TEST_CONTROLS",
}


def test_same_environment_variables_as_the_chart(rendered: Any) -> None:
    manifests: Manifests = rendered("ci/secrets-values.yaml")
    chart_names = set(manifests.get("ConfigMap", "payout-service")["data"])
    # The OTEL_* variables are in the ConfigMap while tracing is on (an endpoint is set).
    chart_names |= set(
        rendered("ci/tracing-values.yaml").get("ConfigMap", "payout-service")["data"]
    )
    deployment = manifests.get("Deployment", "payout-service-api")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    chart_names |= {e["name"] for e in container["env"]} - {"TZ"}  # TZ: that file's extraEnv
    services = compose_file()["services"]
    for name in APP_SERVICES:
        compose_names = set(services[name]["environment"])
        missing = chart_names - compose_names
        assert missing <= TUNING_KNOBS, (name, missing)
        assert compose_names <= chart_names, (name, compose_names - chart_names)


def test_every_variable_is_in_env_example_and_nothing_else() -> None:
    used = {m["name"] for m in VARIABLE.finditer(COMPOSE_FILE.read_text())}
    documented = set(env_example())
    assert used - documented == set(), "add them to .env.example"
    assert documented - used == set(), "unused in docker-compose.yml"
    gitignore = (ROOT / ".gitignore").read_text().split()
    assert ".env" in gitignore, ".env holds secrets and must never be committed"


def test_database_and_broker_urls_point_at_the_compose_services() -> None:
    env = compose_file()["services"]["api"]["environment"]
    resolved = {k: interpolate(str(v), env_example()) for k, v in env.items()}
    assert resolved["DATABASE_URL"] == "postgresql://payouts:payouts@postgres:5432/payouts"
    assert resolved["AMQP_URL"] == "amqp://payouts:payouts@rabbitmq:5672/"
    assert len(resolved["API_BOOTSTRAP_KEY"]) >= 16


# ---------------------------------------------------------------------------- prometheus


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> file in this repository, of every bind mount; each must exist."""
    mounts = {}
    for volume in service["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            assert (ROOT / source).is_file(), f"{source} does not exist"
            mounts[target] = ROOT / source
    return mounts


def test_prometheus_mounts_existing_files_and_scrapes_both_services() -> None:
    mounts = bind_mounts(compose_file()["services"]["prometheus"])
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["payout-api"]["static_configs"][0]["targets"] == ["api:8000"]
    assert jobs["payout-processor"]["static_configs"][0]["targets"] == ["processor:8001"]
    assert all(jobs[j].get("metrics_path", "/metrics") == "/metrics" for j in jobs)
    rules = [t for t in mounts if t.startswith("/etc/prometheus/rules/")]
    assert rules, "no alert rules mounted"
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yaml"]
    assert all(t.endswith(".yaml") for t in rules)
    rules_file = yaml.safe_load(mounts[rules[0]].read_text())
    assert rules_file["groups"], "the mounted alert rules have no groups"


# ------------------------------------------------------------------------------- grafana

GRAFANA_PROVISIONING = "/etc/grafana/provisioning"


def test_grafana_provisions_the_stack_prometheus_as_default_data_source() -> None:
    services = compose_file()["services"]
    grafana = services["grafana"]
    mounts = bind_mounts(grafana)
    files = [p for t, p in mounts.items() if t.startswith(f"{GRAFANA_PROVISIONING}/datasources/")]
    assert len(files) == 1
    config = yaml.safe_load(files[0].read_text())
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert (source["type"], source["access"], source["isDefault"]) == ("prometheus", "proxy", True)
    # the compose service name and the port Prometheus listens on inside the network
    published = services["prometheus"]["ports"][0].rsplit(":", 1)[1]
    assert source["url"] == f"http://prometheus:{published}"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    scrape = yaml.safe_load((ROOT / "deploy/compose/prometheus.yml").read_text())
    assert source["jsonData"]["timeInterval"] == scrape["global"]["scrape_interval"]


def test_grafana_provisions_the_shipped_dashboard_as_its_home_page() -> None:
    grafana = compose_file()["services"]["grafana"]
    mounts = bind_mounts(grafana)
    (provider_file,) = [
        p for t, p in mounts.items() if t.startswith(f"{GRAFANA_PROVISIONING}/dashboards/")
    ]
    config = yaml.safe_load(provider_file.read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    folder = provider["options"]["path"]
    dashboards = {t: p for t, p in mounts.items() if t.startswith(f"{folder}/")}
    assert dashboards == {
        f"{folder}/payout-service.json": ROOT / "deploy/observability/grafana-dashboard.json"
    }
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home in dashboards


def test_dashboard_queries_use_the_data_source_grafana_picks_by_default() -> None:
    """The dashboard's panels and variables query through its `datasource` variable, whose
    type is the provisioned default source's: no panel is left without data."""
    dashboard = json.loads((ROOT / "deploy/observability/grafana-dashboard.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    expected = {"type": "prometheus", "uid": "${datasource}"}
    queried = [p for p in dashboard["panels"] if p.get("targets")]
    assert queried
    for panel in queried:
        assert panel["datasource"] == expected, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == expected, variable["name"]


def test_grafana_has_no_default_credentials_beyond_loopback() -> None:
    grafana = compose_file()["services"]["grafana"]
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert "GRAFANA_ADMIN_PASSWORD" in env["GF_SECURITY_ADMIN_PASSWORD"]
    assert "GRAFANA_ADMIN_PASSWORD" in env_example()
    assert all(p.startswith("127.0.0.1:") for p in grafana["ports"])

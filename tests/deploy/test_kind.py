"""deploy/kind: the cluster config, the in-cluster PostgreSQL and RabbitMQ, the dev values and
the kind-up/kind-down scripts fit together (names, ports, credentials, namespace).
"""

from __future__ import annotations

import base64
import re
import subprocess
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from .support import KIND_DIR, KIND_VALUES, NAMESPACE, RELEASE, ROOT, Manifests

MANIFESTS = ["namespace.yaml", "postgres.yaml", "rabbitmq.yaml"]
SCRIPTS = ["kind-up.sh", "kind-down.sh"]


def load(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((KIND_DIR / name).read_text()) if d]


def infra() -> Manifests:
    return Manifests(tuple(d for name in MANIFESTS for d in load(name)))


def secret_data(secret: dict[str, Any]) -> dict[str, str]:
    data = dict(secret.get("stringData", {}))
    data.update({k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()})
    return data


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifests_are_valid_for_current_kubernetes(name: str) -> None:
    version = kubernetes_validate.latest_version()
    for doc in load(name):
        kubernetes_validate.validate(doc, version, strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE


def test_cluster_publishes_the_api_node_port() -> None:
    cluster = yaml.safe_load((KIND_DIR / "cluster.yaml").read_text())
    assert cluster["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert cluster["kind"] == "Cluster"
    (node,) = cluster["nodes"]
    (mapping,) = node["extraPortMappings"]
    values = yaml.safe_load(KIND_VALUES.read_text())
    assert values["api"]["service"]["type"] == "NodePort"
    assert mapping["containerPort"] == values["api"]["service"]["nodePort"]
    assert mapping["listenAddress"] == "127.0.0.1"
    # 8000 stays free for Tilt's port-forward of the API.
    assert mapping["hostPort"] != 8000
    assert f"127.0.0.1:{mapping['hostPort']}" in (KIND_DIR / "kind-up.sh").read_text()


def test_dev_values_point_at_the_in_cluster_services() -> None:
    values = yaml.safe_load(KIND_VALUES.read_text())["secrets"]
    manifests = infra()
    for url_key, service_name, user_key, password_key in (
        ("databaseUrl", "postgres", "POSTGRES_USER", "POSTGRES_PASSWORD"),
        ("amqpUrl", "rabbitmq", "RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"),
    ):
        url = urlsplit(values[url_key])
        service = manifests.get("Service", service_name)
        assert url.hostname in (service_name, f"{service_name}.{NAMESPACE}.svc"), url.hostname
        assert url.port in {p["port"] for p in service["spec"]["ports"]}
        credentials = secret_data(manifests.get("Secret", service_name))
        assert (url.username, url.password) == (credentials[user_key], credentials[password_key])
    database = urlsplit(values["databaseUrl"]).path.lstrip("/")
    assert database == secret_data(manifests.get("Secret", "postgres"))["POSTGRES_DB"]


def test_services_select_their_statefulsets() -> None:
    manifests = infra()
    for name in ("postgres", "rabbitmq"):
        service = manifests.get("Service", name)
        workload = manifests.get("StatefulSet", name)
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
        ports = {
            p["name"]
            for c in workload["spec"]["template"]["spec"]["containers"]
            for p in c["ports"]
        }
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
        assert workload["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
        assert workload["spec"]["serviceName"] == name


def test_images_match_the_compose_stack() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    manifests = infra()
    for name in ("postgres", "rabbitmq"):
        (container,) = manifests.get("StatefulSet", name)["spec"]["template"]["spec"]["containers"]
        assert container["image"] == compose[name]["image"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_valid_bash(script: str) -> None:
    path = KIND_DIR / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "set -euo pipefail" in path.read_text()


def test_kind_up_installs_what_exists() -> None:
    text = (KIND_DIR / "kind-up.sh").read_text()
    for path in re.findall(r"(deploy/[\w./-]+)", text):
        assert (ROOT / path).exists(), path
    assert f'RELEASE="${{RELEASE:-{RELEASE}}}"' in text
    assert f'NAMESPACE="${{NAMESPACE:-{NAMESPACE}}}"' in text
    cluster = yaml.safe_load((KIND_DIR / "cluster.yaml").read_text())["name"]
    assert f'CLUSTER="${{KIND_CLUSTER:-{cluster}}}"' in text
    assert f'CLUSTER="${{KIND_CLUSTER:-{cluster}}}"' in (KIND_DIR / "kind-down.sh").read_text()
    for target in ("api", "processor"):
        assert '--target "$target"' in text and target in text
    assert "--values deploy/kind/values-dev.yaml" in text


def test_makefile_targets_call_the_scripts() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target, command in (
        ("kind-up", "deploy/kind/kind-up.sh"),
        ("kind-down", "deploy/kind/kind-down.sh"),
    ):
        recipe = re.search(rf"^{target}:.*\n\t(.+)$", makefile, re.MULTILINE)
        assert recipe and recipe[1].strip() == command, target

"""The Helm chart: helm lint and helm template with every values set, Kubernetes schema
validation of every rendered object, and the properties the chart promises (security context,
probes, resources, hook Job, labels, checksums, optional features).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import yaml

from .conftest import VALUE_SETS
from .support import (
    CHART,
    NAMESPACE,
    RELEASE,
    Manifests,
    component_name,
    helm,
    render,
)

Rendered = Callable[[str], Manifests]

K8S_VERSION = kubernetes_validate.latest_version()
# Custom resources: no schema in kubernetes-validate; their structure is asserted below.
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
}
COMPONENTS = ("api", "processor")
API = component_name("api")
PROCESSOR = component_name("processor")
MIGRATE = component_name("migrate")


def workload_container(manifests: Manifests, component: str) -> dict[str, Any]:
    deployment = manifests.get("Deployment", component_name(component))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def env_by_name(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ------------------------------------------------------------------------ lint & schemas


def test_helm_lint_strict(helm_bin: str, values_set: str) -> None:
    args = ["lint", "--strict", str(CHART)]
    for path in VALUE_SETS[values_set]:
        args += ["--values", str(path)]
    proc = helm(*args, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_every_object_is_valid_for_current_kubernetes(rendered: Rendered, values_set: str) -> None:
    manifests = rendered(values_set)
    assert manifests.docs, "helm template rendered nothing"
    errors = []
    for doc in manifests.docs:
        kind = (doc["apiVersion"], doc["kind"])
        if kind in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{kind}: no Kubernetes {K8S_VERSION} schema (and not a known CRD)")
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in getattr(exc, "path", []))
            message = getattr(exc, "message", str(exc).splitlines()[0])
            errors.append(f"{doc['kind']}/{doc['metadata']['name']} at {path}: {message}")
    assert not errors, "\n".join(errors)


def test_object_names_are_unique_per_kind(rendered: Rendered, values_set: str) -> None:
    seen: set[tuple[str, str]] = set()
    for doc in rendered(values_set).docs:
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in seen, f"duplicate {key}"
        seen.add(key)
        assert len(doc["metadata"]["name"]) <= 63


# ------------------------------------------------------------------------------- labels


def test_standard_labels_and_namespace_on_every_object(rendered: Rendered, values_set: str) -> None:
    for doc in rendered(values_set).docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "payout-service", where
        assert labels.get("app.kubernetes.io/instance") == RELEASE, where
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", where
        assert labels.get("app.kubernetes.io/part-of") == "payout-service", where
        assert re.fullmatch(r"payout-service-\d+\.\d+\.\d+.*", labels.get("helm.sh/chart", "")), (
            where
        )
        assert labels.get("app.kubernetes.io/version"), where
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-dashboard"):
            continue  # may live in Grafana's namespace (metrics.dashboard.namespace)
        assert doc["metadata"].get("namespace") == NAMESPACE, where


def test_component_label_and_selectors(rendered: Rendered, values_set: str) -> None:
    manifests = rendered(values_set)
    for component in COMPONENTS:
        deployment = manifests.get("Deployment", component_name(component))
        selector = deployment["spec"]["selector"]["matchLabels"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["metadata"]["labels"]["app.kubernetes.io/component"] == component
        assert selector == {
            "app.kubernetes.io/name": "payout-service",
            "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": component,
        }
        assert labels_match(selector, pod_labels)
        # The version label changes on upgrades: it must never be part of a selector.
        assert "app.kubernetes.io/version" not in selector
    # Each Service selects exactly one component's pods.
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in manifests.of_kind("Deployment")
    }
    for service in manifests.of_kind("Service"):
        matching = [
            n for n, labels in pods.items() if labels_match(service["spec"]["selector"], labels)
        ]
        assert matching == [service["metadata"]["name"]], service["metadata"]["name"]


# -------------------------------------------------------------------- pods: the promises


def test_pods_are_locked_down(rendered: Rendered, values_set: str) -> None:
    manifests = rendered(values_set)
    specs = manifests.pod_specs()
    assert specs
    for where, template in specs:
        pod = template["spec"]
        assert pod["automountServiceAccountToken"] is False, where
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True, where
        assert psc["runAsUser"] != 0, where
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", where
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in sc["capabilities"], where
            assert sc["runAsNonRoot"] is True, where
            assert sc.get("privileged", False) is False, where
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{where}: /tmp must be an emptyDir"
            resources = container["resources"]
            assert resources["requests"]["cpu"] and resources["requests"]["memory"], where
            assert resources["limits"]["memory"], where


def test_service_account_has_no_token(rendered: Rendered, values_set: str) -> None:
    manifests = rendered(values_set)
    accounts = manifests.of_kind("ServiceAccount")
    for account in accounts:
        assert account["automountServiceAccountToken"] is False
    names = {a["metadata"]["name"] for a in accounts}
    for component in COMPONENTS:
        pod = manifests.get("Deployment", component_name(component))["spec"]["template"]["spec"]
        if accounts:
            assert pod["serviceAccountName"] in names
        else:
            assert pod["serviceAccountName"]  # an existing account (serviceAccount.create: false)


def test_probes_use_the_health_endpoints(rendered: Rendered, values_set: str) -> None:
    manifests = rendered(values_set)
    config = manifests.get("ConfigMap", RELEASE)["data"]
    ports = {"api": int(config["API_PORT"]), "processor": int(config["PROCESSOR_HTTP_PORT"])}
    for component in COMPONENTS:
        container = workload_container(manifests, component)
        (port,) = container["ports"]
        assert port == {"name": "http", "containerPort": ports[component], "protocol": "TCP"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        if values_set == "ci/minimal-values.yaml" and component == "api":
            assert "startupProbe" not in container  # switched off in that file
        else:
            assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
            budget = (
                container["startupProbe"]["periodSeconds"]
                * container["startupProbe"]["failureThreshold"]
            )
            assert budget >= 30, "the startup probe must allow at least 30 s to start"


def test_pods_start_after_their_check_config_init_container(
    rendered: Rendered, values_set: str
) -> None:
    """The init container is the service's own command with --check-config, in the same
    image and with the same environment: it checks what the service will run with."""
    manifests = rendered(values_set)
    for component in COMPONENTS:
        pod = manifests.get("Deployment", component_name(component))["spec"]["template"]["spec"]
        if values_set == "ci/minimal-values.yaml":
            assert "initContainers" not in pod  # checkConfig.enabled: false
            continue
        (check,) = pod["initContainers"]
        (service,) = pod["containers"]
        assert check["name"] == "check-config"
        assert check["command"] == service["command"]
        assert check["args"] == ["--check-config"]
        for key in ("image", "imagePullPolicy", "envFrom", "env", "securityContext"):
            assert check[key] == service[key], (component, key)


def test_grace_period_exceeds_the_drain_time(rendered: Rendered, values_set: str) -> None:
    manifests = rendered(values_set)
    drain = float(manifests.get("ConfigMap", RELEASE)["data"]["SHUTDOWN_GRACE_S"])
    for component in COMPONENTS:
        pod = manifests.get("Deployment", component_name(component))["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] > drain


def test_topology_spread_selects_own_component(rendered: Rendered) -> None:
    manifests = rendered("default")
    for component in COMPONENTS:
        deployment = manifests.get("Deployment", component_name(component))
        constraints = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in constraints} == {
            "kubernetes.io/hostname",
            "topology.kubernetes.io/zone",
        }
        for c in constraints:
            assert (
                c["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
            )


# ------------------------------------------------------------------ configuration & secrets


class RecordingEnv(dict):
    """An empty environment that remembers every variable looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.seen.add(str(key))
        return super().__contains__(key)


def settings_env_names() -> set[str]:
    """Environment variables the services read: Settings.from_env on a recording mapping."""
    from payout_core.settings import Settings

    env = RecordingEnv()
    Settings.from_env(env)
    return env.seen


def test_every_setting_of_the_services_is_configurable(rendered: Rendered) -> None:
    manifests = rendered("ci/secrets-values.yaml")
    names = set(manifests.get("ConfigMap", RELEASE)["data"])
    api = workload_container(manifests, "api")
    names |= set(env_by_name(api))
    # PROVIDER_SIM_DATABASE_URL: only the simulated provider reads it (an optional Secret key).
    names |= set(env_by_name(workload_container(manifests, "provider-sim")))
    # Tracing's OTEL_* variables: rendered while tracing.endpoint is set.
    names |= set(rendered("ci/tracing-values.yaml").get("ConfigMap", RELEASE)["data"])
    # The traces-only endpoint overrides the general one; it goes through extraEnv.
    names.add("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    expected = settings_env_names()
    assert {"DATABASE_URL", "AMQP_URL", "API_BOOTSTRAP_KEY", "LOG_LEVEL"} <= expected
    assert expected - names == set(), "settings the chart cannot set"
    assert {"DATABASE_URL", "AMQP_URL", "API_BOOTSTRAP_KEY"}.isdisjoint(
        manifests.get("ConfigMap", RELEASE)["data"]
    ), "secrets must never land in the ConfigMap"


def test_secret_values_and_least_privilege(rendered: Rendered) -> None:
    import base64

    manifests = rendered("ci/secrets-values.yaml")
    data = {
        k: base64.b64decode(v).decode() for k, v in manifests.get("Secret", RELEASE)["data"].items()
    }
    assert data == {
        "DATABASE_URL": "postgresql://payouts:s3cret@postgresql.db.svc:5432/payouts",
        "AMQP_URL": "amqp://payouts:s3cret@rabbitmq.mq.svc:5672/payouts",
        "API_BOOTSTRAP_KEY": "ci-bootstrap-key-0123456789",
        "WEBHOOK_SECRET_KEY": "Vh0Q1y6f2zjvH1k2b3u4n5m6p7q8r9s0t1u2v3w4x5Y=",
    }
    api = env_by_name(workload_container(manifests, "api"))
    processor = env_by_name(workload_container(manifests, "processor"))
    for env in (api, processor):
        for name in ("DATABASE_URL", "AMQP_URL", "WEBHOOK_SECRET_KEY"):
            ref = env[name]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": RELEASE, "key": name}, "required: no `optional`"
    assert api["API_BOOTSTRAP_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "API_BOOTSTRAP_KEY" not in processor, "the processor never needs the API key"
    assert api["TZ"] == {"name": "TZ", "value": "UTC"}  # extraEnv
    assert workload_container(manifests, "api")["image"] == (
        "registry.example.com/payments/payout-api@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )
    assert workload_container(manifests, "processor")["image"] == (
        "registry.example.com/payments/payout-processor:1.2.3"
    )


def test_default_secret_holds_no_invented_credentials(rendered: Rendered) -> None:
    manifests = rendered("default")
    assert manifests.get("Secret", RELEASE)["data"] == {}
    assert manifests.get("Secret", MIGRATE)["data"] == {}


def test_existing_secret_is_used_with_its_key_names(rendered: Rendered) -> None:
    manifests = rendered("ci/existing-secret-values.yaml")
    assert manifests.of_kind("Secret") == [], "no Secret may be created for an existing one"
    api = env_by_name(workload_container(manifests, "api"))
    assert api["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "payout-credentials",
        "key": "database-url",
    }
    assert api["AMQP_URL"]["valueFrom"]["secretKeyRef"]["key"] == "amqp-url"
    assert api["API_BOOTSTRAP_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "bootstrap-key"
    job = manifests.get("Job", MIGRATE)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert env_by_name(container)["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "payout-credentials",
        "key": "database-url",
    }
    assert manifests.of_kind("ServiceAccount") == []
    for component in COMPONENTS:
        pod = manifests.get("Deployment", component_name(component))["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "payouts"


# -------------------------------------------------------------------------- checksums


def pod_annotations(manifests: Manifests, component: str) -> dict[str, str]:
    deployment = manifests.get("Deployment", component_name(component))
    return deployment["spec"]["template"]["metadata"]["annotations"]


def test_checksum_annotations_roll_pods_on_config_and_secret_changes(rendered: Rendered) -> None:
    base = rendered("default")
    config_changed = Manifests(tuple(render(sets=["config.logLevel=debug"])))
    secret_changed = Manifests(tuple(render(sets=["secrets.amqpUrl=amqp://u:p@mq:5672/"])))
    for component in COMPONENTS:
        before = pod_annotations(base, component)
        assert re.fullmatch(r"[0-9a-f]{64}", before["checksum/config"])
        assert re.fullmatch(r"[0-9a-f]{64}", before["checksum/secret"])
        after_config = pod_annotations(config_changed, component)
        after_secret = pod_annotations(secret_changed, component)
        assert after_config["checksum/config"] != before["checksum/config"]
        assert after_config["checksum/secret"] == before["checksum/secret"]
        assert after_secret["checksum/secret"] != before["checksum/secret"]
        assert after_secret["checksum/config"] == before["checksum/config"]


def test_existing_secret_checksum_follows_its_name(rendered: Rendered) -> None:
    annotations = pod_annotations(rendered("ci/existing-secret-values.yaml"), "api")
    assert annotations["checksum/secret"] == hashlib.sha256(b"payout-credentials").hexdigest()


# ---------------------------------------------------------------------- migration hook


def test_migration_is_a_pre_install_pre_upgrade_hook(rendered: Rendered) -> None:
    manifests = rendered("ci/secrets-values.yaml")
    job = manifests.get("Job", MIGRATE)
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["activeDeadlineSeconds"] > 0
    (container,) = pod["containers"]
    assert container["command"] == ["payout-admin", "migrate"]
    assert container["image"] == workload_container(manifests, "api")["image"]
    # Pre-install hooks run before the release's objects exist: only hook objects may be used.
    assert "serviceAccountName" not in pod
    assert "envFrom" not in container
    ref = env_by_name(container)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    hook_secret = manifests.get("Secret", ref["name"])
    assert hook_secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        annotations["helm.sh/hook-weight"]
    ), "the hook Secret must exist before the Job"
    assert ref["key"] in hook_secret["data"]
    assert set(hook_secret["data"]) == {"DATABASE_URL"}, "the migration needs the database only"


def test_migrations_never_run_in_the_replicas(rendered: Rendered, values_set: str) -> None:
    manifests = rendered(values_set)
    for deployment in manifests.of_kind("Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            argv = container.get("command", []) + container.get("args", [])
            assert "migrate" not in argv and "payout-admin" not in argv
    jobs = manifests.of_kind("Job")
    if values_set == "ci/minimal-values.yaml":
        assert jobs == []  # migration.enabled: false
    else:
        assert [j["metadata"]["name"] for j in jobs] == [MIGRATE]


# -------------------------------------------------------------------- default features


def test_defaults_are_secure_and_minimal(rendered: Rendered) -> None:
    manifests = rendered("default")
    kinds = {d["kind"] for d in manifests.docs}
    assert kinds == {
        "ConfigMap",
        "CronJob",
        "Deployment",
        "Job",
        "NetworkPolicy",
        "Pod",
        "PodDisruptionBudget",
        "Secret",
        "Service",
        "ServiceAccount",
    }
    assert manifests.get("Service", API)["spec"]["type"] == "ClusterIP"
    for component in COMPONENTS:
        assert manifests.get("Deployment", component_name(component))["spec"]["replicas"] >= 2
        pdb = manifests.get("PodDisruptionBudget", component_name(component))
        assert pdb["spec"]["maxUnavailable"] == 1
        assert (
            pdb["spec"]["selector"]["matchLabels"]
            == manifests.get("Deployment", component_name(component))["spec"]["selector"][
                "matchLabels"
            ]
        )


def test_network_policies_allow_only_what_is_needed(rendered: Rendered) -> None:
    manifests = rendered("default")
    for component in COMPONENTS:
        policy = manifests.get("NetworkPolicy", component_name(component))
        deployment = manifests.get("Deployment", component_name(component))
        assert (
            policy["spec"]["podSelector"]["matchLabels"]
            == (deployment["spec"]["selector"]["matchLabels"])
        )
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        (ingress,) = policy["spec"]["ingress"]
        assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
        egress_ports = {
            (p["port"], p["protocol"]) for rule in policy["spec"]["egress"] for p in rule["ports"]
        }
        # Only the processor calls the provider (the chart's simulated one by default).
        to_provider = {(8002, "TCP")} if component == "processor" else set()
        assert (
            egress_ports
            == {
                (53, "UDP"),
                (53, "TCP"),
                (5432, "TCP"),
                (5672, "TCP"),
                (5671, "TCP"),
            }
            | to_provider
        )
    sim = manifests.get("NetworkPolicy", component_name("provider-sim"))
    (ingress,) = sim["spec"]["ingress"]
    clients = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for peer in ingress["from"]
    }
    assert clients == {"processor", "reconcile"}, "only the processor and the reconciler pay"


def test_network_policy_peers_and_extra_egress(rendered: Rendered) -> None:
    manifests = rendered("ci/networkpolicy-values.yaml")
    policy = manifests.get("NetworkPolicy", API)
    database_rule = policy["spec"]["egress"][1]
    assert [p["port"] for p in database_rule["ports"]] == [5432, 5672]
    assert database_rule["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "databases"
    }
    assert policy["spec"]["egress"][2]["ports"] == [{"port": 443, "protocol": "TCP"}]
    ingress = rendered("ci/ingress-values.yaml").get("NetworkPolicy", API)["spec"]["ingress"][0]
    assert ingress["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }


def test_tracing_is_off_by_default_and_on_with_an_endpoint(rendered: Rendered) -> None:
    config = rendered("default").get("ConfigMap", RELEASE)["data"]
    assert not [name for name in config if name.startswith("OTEL_")]
    manifests = rendered("ci/tracing-values.yaml")
    config = manifests.get("ConfigMap", RELEASE)["data"]
    assert {k: v for k, v in config.items() if k.startswith("OTEL_")} == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability.svc:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=ci",
    }
    for component in (API, PROCESSOR):
        rules = manifests.get("NetworkPolicy", component)["spec"]["egress"]
        collector = [r for r in rules if r["ports"] == [{"port": 4318, "protocol": "TCP"}]]
        assert len(collector) == 1, component
        assert collector[0]["to"][0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "observability"
        }


def test_minimal_values_switch_the_optional_objects_off(rendered: Rendered) -> None:
    manifests = rendered("ci/minimal-values.yaml")
    kinds = {d["kind"] for d in manifests.docs}
    assert kinds.isdisjoint({"NetworkPolicy", "PodDisruptionBudget", "Job", "Pod"})
    service = manifests.get("Service", API)
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"][0]["nodePort"] == 30080
    deployment = manifests.get("Deployment", API)
    assert "topologySpreadConstraints" not in deployment["spec"]["template"]["spec"]
    (volume,) = deployment["spec"]["template"]["spec"]["volumes"]
    assert volume["emptyDir"] == {"medium": "Memory"}


# ------------------------------------------------------------------- optional features


def test_ingress_routes_to_the_api_service(rendered: Rendered) -> None:
    manifests = rendered("ci/ingress-values.yaml")
    ingress = manifests.get("Ingress", API)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["payouts.example.com"], "secretName": "payouts-example-com-tls"}
    ]
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/api/payouts"
    backend = path["backend"]["service"]
    service = manifests.get("Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    assert "Ingress" not in {d["kind"] for d in rendered("default").docs}


def test_hpa_targets_both_deployments_and_owns_their_replicas(rendered: Rendered) -> None:
    manifests = rendered("ci/hpa-values.yaml")
    hpas = {h["metadata"]["name"]: h for h in manifests.of_kind("HorizontalPodAutoscaler")}
    assert set(hpas) == {API, PROCESSOR}
    for name, hpa in hpas.items():
        target = hpa["spec"]["scaleTargetRef"]
        assert target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert "replicas" not in manifests.get("Deployment", name)["spec"], (
            "replicas must be left to the HPA, or every upgrade resets them"
        )
    api_metrics = {m["resource"]["name"]: m for m in hpas[API]["spec"]["metrics"]}
    assert api_metrics["cpu"]["resource"]["target"]["averageUtilization"] == 60
    assert api_metrics["memory"]["resource"]["target"]["averageUtilization"] == 80
    assert hpas[API]["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert [m["resource"]["name"] for m in hpas[PROCESSOR]["spec"]["metrics"]] == ["memory"]
    assert hpas[API]["spec"]["minReplicas"] == 3
    assert not rendered("default").of_kind("HorizontalPodAutoscaler")


def test_keda_scales_the_processor_on_its_queue(rendered: Rendered) -> None:
    manifests = rendered("ci/keda-values.yaml")
    (scaled,) = manifests.of_kind("ScaledObject")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == PROCESSOR
    manifests.get("Deployment", spec["scaleTargetRef"]["name"])
    assert "replicas" not in manifests.get("Deployment", PROCESSOR)["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 20)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"] == {
        "protocol": "amqp",
        "mode": "QueueLength",
        "queueName": "payouts.process",
        "value": "25",
    }
    from payout_core.messaging.contracts import QUEUE_PROCESS

    assert trigger["metadata"]["queueName"] == QUEUE_PROCESS
    auth = manifests.get("TriggerAuthentication", trigger["authenticationRef"]["name"])
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref == {"parameter": "host", "name": RELEASE, "key": "AMQP_URL"}
    manifests.get("Secret", ref["name"])
    # KEDA owns the processor's HPA; the API keeps its own.
    assert manifests.names("HorizontalPodAutoscaler") == {API}


def test_service_monitor_scrapes_both_services(rendered: Rendered) -> None:
    manifests = rendered("ci/monitoring-values.yaml")
    (monitor,) = manifests.of_kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    selected = []
    for service in manifests.of_kind("Service"):
        labels = service["metadata"]["labels"]
        expressions_ok = all(
            labels.get(e["key"]) in e["values"] for e in spec["selector"]["matchExpressions"]
        )
        if labels_match(spec["selector"]["matchLabels"], labels) and expressions_ok:
            selected.append(service)
    assert sorted(s["metadata"]["name"] for s in selected) == [API, PROCESSOR]
    (endpoint,) = spec["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "15s"
    for service in selected:
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    (relabel,) = endpoint["relabelings"]
    assert relabel["targetLabel"] == "job"
    assert relabel["sourceLabels"] == [
        "__meta_kubernetes_service_label_app_kubernetes_io_component"
    ]
    jobs = {
        relabel["replacement"].replace("$1", s["metadata"]["labels"]["app.kubernetes.io/component"])
        for s in selected
    }
    assert jobs == {"payout-api", "payout-processor"}
    assert endpoint["metricRelabelings"][0]["action"] == "drop"


def test_prometheus_rule_carries_the_alert_rules_file(rendered: Rendered) -> None:
    manifests = rendered("ci/monitoring-values.yaml")
    (rule,) = manifests.of_kind("PrometheusRule")
    expected = yaml.safe_load((CHART / "files" / "alert-rules.yaml").read_text())["groups"]
    assert rule["spec"]["groups"] == expected
    assert expected, "files/alert-rules.yaml has no groups"
    for group in rule["spec"]["groups"]:
        assert group["name"] and group["rules"]
        for item in group["rules"]:
            assert ("alert" in item) != ("record" in item)
            assert item["expr"]
    # Alert templates reach Prometheus untouched (not evaluated by Helm).
    assert "{{ $labels.job }}" in json.dumps(rule["spec"]["groups"])
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_dashboard_configmap_for_the_grafana_sidecar(rendered: Rendered) -> None:
    manifests = rendered("ci/monitoring-values.yaml")
    dashboard = manifests.get("ConfigMap", f"{RELEASE}-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Payments"}
    (content,) = dashboard["data"].values()
    expected = json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    assert json.loads(content) == expected
    assert not [
        d
        for d in rendered("default").of_kind("ConfigMap")
        if "grafana_dashboard" in d["metadata"]["labels"]
    ]


# -------------------------------------------------------------------------- helm test


def test_helm_test_pod_checks_both_services_with_the_bootstrap_key(rendered: Rendered) -> None:
    """A test hook Pod in the API image that reaches both Services on their ports and reads
    the bootstrap key from the release's Secret (or secrets.existingSecret)."""
    manifests = rendered("default")
    (pod,) = manifests.of_kind("Pod")
    assert pod["metadata"]["name"] == component_name("test")
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "test"
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == workload_container(manifests, "api")["image"]
    assert container["command"] == ["payout-smoke-test"]
    ports = {
        name: manifests.get("Service", name)["spec"]["ports"][0]["port"]
        for name in (API, PROCESSOR)
    }
    assert container["args"] == [
        *("--api-url", f"http://{API}:{ports[API]}"),
        *("--processor-url", f"http://{PROCESSOR}:{ports[PROCESSOR]}"),
    ]
    key = env_by_name(container)["API_BOOTSTRAP_KEY"]["valueFrom"]["secretKeyRef"]
    api_key = env_by_name(workload_container(manifests, "api"))["API_BOOTSTRAP_KEY"]
    assert key == api_key["valueFrom"]["secretKeyRef"]
    existing = rendered("ci/existing-secret-values.yaml")
    (pod,) = existing.of_kind("Pod")
    (container,) = pod["spec"]["containers"]
    key = env_by_name(container)["API_BOOTSTRAP_KEY"]["valueFrom"]["secretKeyRef"]
    assert (
        key["name"]
        == existing.get("Deployment", API)["spec"]["template"]["spec"]["containers"][0]["env"][2][
            "valueFrom"
        ]["secretKeyRef"]["name"]
    )


def test_a_real_provider_replaces_the_simulated_one(helm_bin: str) -> None:
    manifests = Manifests(
        tuple(render(sets=["providerSim.enabled=false", "config.providerUrl=https://bank.example"]))
    )
    config = manifests.get("ConfigMap", RELEASE)["data"]
    assert config["PROVIDER_URL"] == "https://bank.example"
    assert config["PROVIDER_SIM_TEST_CONTROLS"] == "0"
    assert not any("provider-sim" in doc["metadata"]["name"] for doc in manifests.docs)


def test_the_reconciler_runs_while_keda_holds_the_processor_at_zero(rendered: Rendered) -> None:
    manifests = rendered("ci/keda-values.yaml")
    assert (
        manifests.get("ScaledObject", component_name("processor"))["spec"]["minReplicaCount"] == 0
    )
    job = manifests.get("CronJob", component_name("reconcile"))
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["payout-admin", "reconcile"]
    assert {"DATABASE_URL", "AMQP_URL"} <= {env["name"] for env in container["env"]}
    assert container["envFrom"] == [{"configMapRef": {"name": RELEASE}}]  # PROVIDER_URL

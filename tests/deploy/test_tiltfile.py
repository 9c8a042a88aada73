"""The Tiltfile, evaluated by a Starlark interpreter (starlark-pyo3) with stand-ins for Tilt's
builtins that record every call: every referenced path exists, the images, live updates and
helm() call fit the Dockerfile and the chart, and the resources Tilt is told about exist in
what it would deploy.

The stand-ins take Tilt's parameter names, so a misspelt keyword fails here as in Tilt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import starlark
import yaml

from .support import (
    KIND_DIR,
    ROOT,
    dockerfile_stages,
    helm,
    image_command,
    stage,
)

TILTFILE = ROOT / "Tiltfile"


@dataclass
class Image:
    ref: str
    context: str
    target: str
    only: list[str]
    live_update: list[dict[str, Any]]
    entrypoint: list[str] | None
    restart_file: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorder:
    """What the Tiltfile asked Tilt to do."""

    contexts: list[str] = field(default_factory=list)
    images: dict[str, Image] = field(default_factory=dict)
    yaml_files: list[str] = field(default_factory=list)
    manifests: list[dict[str, Any]] = field(default_factory=list)
    helm_calls: list[dict[str, Any]] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    local_resources: list[dict[str, Any]] = field(default_factory=list)
    paths: list[tuple[str, str]] = field(default_factory=list)  # (what, path)

    def path(self, what: str, path: str) -> str:
        self.paths.append((what, path))
        return path


class HelmBlob:
    """What helm() returns in Tilt: rendered YAML, only usable by k8s_yaml()."""

    def __init__(self, text: str) -> None:
        self.text = text


def evaluate(tiltfile: Path = TILTFILE) -> Recorder:
    rec = Recorder()

    def allow_k8s_contexts(contexts: Any) -> None:
        rec.contexts += [contexts] if isinstance(contexts, str) else list(contexts)

    def sync(local_path: str, remote_path: str) -> dict[str, Any]:
        rec.path("sync", local_path)
        return {"step": "sync", "local": local_path, "remote": remote_path}

    def run(cmd: str, trigger: Any = None, echo_off: bool = False) -> dict[str, Any]:
        return {"step": "run", "cmd": cmd, "trigger": trigger or []}

    def fall_back_on(files: Any) -> dict[str, Any]:
        files = [files] if isinstance(files, str) else list(files)
        for f in files:
            rec.path("fall_back_on", f)
        return {"step": "fall_back_on", "files": files}

    def docker_build(
        ref: str,
        context: str,
        build_args: Any = None,
        dockerfile: str = "Dockerfile",
        dockerfile_contents: str = "",
        live_update: Any = None,
        match_in_env_vars: bool = False,
        ignore: Any = None,
        only: Any = None,
        entrypoint: Any = None,
        target: str = "",
        ssh: Any = None,
        network: str = "",
        secret: Any = None,
        extra_tag: Any = None,
        container_args: Any = None,
        cache_from: Any = None,
        pull: bool = False,
        platform: str = "",
        extra_hosts: Any = None,
    ) -> None:
        assert ref not in rec.images, f"docker_build({ref!r}) declared twice"
        rec.path("docker_build context", context)
        rec.path("dockerfile", str(Path(context) / dockerfile))
        for entry in only or []:
            rec.path("only", str(Path(context) / entry))
        rec.images[ref] = Image(
            ref=ref,
            context=context,
            target=target,
            only=list(only or []),
            live_update=list(live_update or []),
            entrypoint=list(entrypoint) if entrypoint else None,
            build_args=dict(build_args or {}),
        )

    def docker_build_with_restart(
        ref: str,
        context: str,
        entrypoint: Any,
        live_update: Any,
        base_suffix: str = "-base",
        restart_file: str = "/.restart-proc",
        trigger: Any = None,
        exit_policy: str = "restart",
        **kwargs: Any,
    ) -> None:
        # As the restart_process extension: a live_update is required, restart_container()
        # is refused, and the entrypoint is re-run after every live update.
        assert live_update, "docker_build_with_restart needs live_update steps"
        docker_build(ref, context, entrypoint=entrypoint, live_update=live_update, **kwargs)
        rec.images[ref].restart_file = restart_file

    def helm_(
        pathToChartDir: str,  # Tilt's parameter names
        name: str = "",
        namespace: str = "",
        values: Any = None,
        set: Any = None,
        kube_version: str = "",
        skip_crds: bool = False,
    ) -> starlark.OpaquePythonObject:
        values = [values] if isinstance(values, str) else list(values or [])
        sets = [set] if isinstance(set, str) else list(set or [])
        rec.path("helm chart", pathToChartDir)
        for v in values:
            rec.path("helm values", v)
        rec.helm_calls.append(
            {
                "chart": pathToChartDir,
                "name": name,
                "namespace": namespace,
                "values": values,
                "set": sets,
            }
        )
        args = ["template", name, str(ROOT / pathToChartDir), "--namespace", namespace]
        for v in values:
            args += ["--values", str(ROOT / v)]
        for s in sets:
            args += ["--set", s]
        return starlark.OpaquePythonObject(HelmBlob(helm(*args).stdout))

    def k8s_yaml(yaml_: Any, allow_duplicates: bool = False) -> None:
        items = yaml_ if isinstance(yaml_, list) else [yaml_]
        for item in items:
            if isinstance(item, HelmBlob):
                text = item.text
            else:
                rec.yaml_files.append(rec.path("k8s_yaml", item))
                text = (ROOT / item).read_text()
            rec.manifests += [d for d in yaml.safe_load_all(text) if d]

    def k8s_resource(
        workload: str = "",
        new_name: str = "",
        port_forwards: Any = None,
        extra_pod_selectors: Any = None,
        trigger_mode: Any = None,
        resource_deps: Any = None,
        objects: Any = None,
        auto_init: bool = True,
        pod_readiness: str = "",
        links: Any = None,
        labels: Any = None,
        discovery_strategy: str = "",
    ) -> None:
        rec.resources.append(
            {
                "workload": workload,
                "new_name": new_name,
                "port_forwards": list(port_forwards or []),
                "resource_deps": list(resource_deps or []),
                "objects": list(objects or []),
                "links": list(links or []),
                "labels": [labels] if isinstance(labels, str) else list(labels or []),
            }
        )

    def local_resource(
        name: str,
        cmd: Any = "",
        deps: Any = None,
        trigger_mode: Any = None,
        resource_deps: Any = None,
        ignore: Any = None,
        auto_init: bool = True,
        serve_cmd: Any = "",
        cmd_bat: Any = "",
        serve_cmd_bat: Any = "",
        allow_parallel: bool = False,
        links: Any = None,
        tags: Any = None,
        env: Any = None,
        serve_env: Any = None,
        readiness_probe: Any = None,
        dir: str = "",
        serve_dir: str = "",
        labels: Any = None,
    ) -> None:
        deps = [deps] if isinstance(deps, str) else list(deps or [])
        for d in deps:
            rec.path("local_resource deps", d)
        rec.local_resources.append(
            {
                "name": name,
                "cmd": cmd,
                "deps": deps,
                "labels": [labels] if isinstance(labels, str) else list(labels or []),
            }
        )

    def link(url: str, name: str = "") -> dict[str, str]:
        return {"url": url, "name": name}

    module = starlark.Module()
    for name, fn in {
        "allow_k8s_contexts": allow_k8s_contexts,
        "docker_build": docker_build,
        "sync": sync,
        "run": run,
        "fall_back_on": fall_back_on,
        "helm": helm_,
        "k8s_yaml": k8s_yaml,
        "k8s_resource": k8s_resource,
        "local_resource": local_resource,
        "link": link,
    }.items():
        module.add_callable(name, fn)

    extensions = {"ext://restart_process": {"docker_build_with_restart": docker_build_with_restart}}

    def load(module_id: str) -> starlark.FrozenModule:
        assert module_id in extensions, f"load({module_id!r}): no stand-in for this extension"
        ext = starlark.Module()
        for name, fn in extensions[module_id].items():
            ext.add_callable(name, fn)
        return ext.freeze()

    ast = starlark.parse("Tiltfile", tiltfile.read_text(), starlark.Dialect.extended())
    starlark.eval(module, ast, starlark.Globals.standard(), starlark.FileLoader(load))
    return rec


@pytest.fixture(scope="module")
def tilt(helm_bin: str) -> Recorder:
    return evaluate()


# ------------------------------------------------------------------------------ checks


def test_the_recorder_sees_an_unknown_builtin(tmp_path: Path) -> None:
    """A Tiltfile calling something the stand-ins do not know fails to evaluate."""
    bad = tmp_path / "Tiltfile"
    bad.write_text("docker_compose('docker-compose.yml')\n")
    with pytest.raises(starlark.StarlarkError):
        evaluate(bad)
    bad.write_text("docker_build('x', '.', tagret='api')\n")  # misspelt keyword
    with pytest.raises((starlark.StarlarkError, TypeError)):
        evaluate(bad)


def test_every_referenced_path_exists(tilt: Recorder) -> None:
    assert len(tilt.paths) > 10
    missing = [f"{what}: {path}" for what, path in tilt.paths if not (ROOT / path).exists()]
    assert missing == []


def test_only_ever_deploys_to_the_kind_cluster(tilt: Recorder) -> None:
    cluster = yaml.safe_load((KIND_DIR / "cluster.yaml").read_text())
    assert tilt.contexts == [f"kind-{cluster['name']}"]


def test_both_service_images_live_update_and_restart(tilt: Recorder) -> None:
    stages = {s.name for s in dockerfile_stages()}
    for service in ("api", "processor"):
        image = tilt.images[f"payout-{service}"]
        assert image.context == "."
        assert image.target in stages
        # The dev target is the production target plus writable source, nothing else.
        assert stage(image.target).base == service
        assert image.entrypoint == image_command(service), "Tilt must run what the image runs"
        assert image.restart_file and image.restart_file.startswith("/app/"), (
            "the restart file must be in the image's writable /app, not under the /tmp emptyDir"
        )
        syncs = {s["local"]: s["remote"] for s in image.live_update if s["step"] == "sync"}
        assert syncs == {
            "libs/payout_core/src": "/app/libs/payout_core/src",
            f"services/{service}/src": f"/app/services/{service}/src",
        }
        # What is synced is what the Dockerfile copies there (same layout).
        build_copies = [i.value for i in stage(f"{service}-build").all("COPY")]
        for local in syncs:
            assert f"{local} {local}" in build_copies
            assert any(local.startswith(o) for o in image.only), f"{local} not in only="
        (fallback,) = [s for s in image.live_update if s["step"] == "fall_back_on"]
        assert image.live_update[0] == fallback, "fall_back_on must come first"
        assert {"uv.lock", "pyproject.toml"} <= set(fallback["files"])
        assert not any(o.startswith(("tests", "deploy", "docs")) for o in image.only)


def test_migration_image_is_separate_and_plain(tilt: Recorder) -> None:
    (call,) = tilt.helm_calls
    repository = next(
        s.split("=", 1)[1] for s in call["set"] if s.startswith("migration.image.repository=")
    )
    image = tilt.images[repository]
    assert image.target == "api" and image.entrypoint is None and image.live_update == []


def test_helm_renders_the_chart_with_the_kind_values(tilt: Recorder) -> None:
    (call,) = tilt.helm_calls
    assert call["chart"] == "deploy/helm/payout-service"
    assert call["values"] == ["deploy/kind/values-dev.yaml"]
    assert call["namespace"] == "payouts"
    assert "securityContext.readOnlyRootFilesystem=false" in call["set"]


def test_every_built_image_is_used_by_a_deployed_container(tilt: Recorder) -> None:
    images = set()
    for doc in tilt.manifests:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        images |= {c["image"].split(":")[0] for c in spec.get("containers", [])}
    for ref in tilt.images:
        assert ref in images, f"docker_build({ref!r}) but no container uses it"


def workloads(manifests: list[dict[str, Any]]) -> set[str]:
    kinds = {"Deployment", "StatefulSet", "Job", "DaemonSet"}
    return {d["metadata"]["name"] for d in manifests if d["kind"] in kinds}


def test_resources_name_objects_that_exist(tilt: Recorder) -> None:
    existing = {f"{d['metadata']['name']}:{d['kind'].lower()}" for d in tilt.manifests}
    names = workloads(tilt.manifests)
    for resource in tilt.resources:
        if resource["workload"]:
            assert resource["workload"] in names, resource["workload"]
        else:
            assert resource["new_name"] and resource["objects"]
        for fragment in resource["objects"]:
            assert fragment in existing, f"{fragment} is not deployed"
        assert resource["labels"], f"{resource['workload'] or resource['new_name']} has no labels"
    # Every workload deployed gets a resource of its own with labels.
    assert names <= {r["workload"] for r in tilt.resources}


def resource(tilt: Recorder, name: str) -> dict[str, Any]:
    return next(r for r in tilt.resources if name in (r["workload"], r["new_name"]))


def test_dependencies_order_the_migration_before_the_services(tilt: Recorder) -> None:
    known = {r["workload"] or r["new_name"] for r in tilt.resources}
    for r in tilt.resources:
        assert set(r["resource_deps"]) <= known
    migrate = resource(tilt, "payout-service-migrate")
    assert "postgres" in migrate["resource_deps"]
    for service in ("payout-service-api", "payout-service-processor"):
        assert {"payout-service-migrate", "rabbitmq"} <= set(
            resource(tilt, service)["resource_deps"]
        )


def container_ports(tilt: Recorder, workload: str) -> set[int]:
    for doc in tilt.manifests:
        if doc["metadata"]["name"] == workload and doc["kind"] in ("Deployment", "StatefulSet"):
            containers = doc["spec"]["template"]["spec"]["containers"]
            return {p["containerPort"] for c in containers for p in c.get("ports", [])}
    raise AssertionError(f"no workload {workload}")


def test_port_forwards_reach_real_container_ports(tilt: Recorder) -> None:
    expected = {
        "payout-service-api": "8000:8000",
        "payout-service-processor": "8001:8001",
        "rabbitmq": "15672:15672",
    }
    for workload, forward in expected.items():
        assert forward in resource(tilt, workload)["port_forwards"]
    for r in tilt.resources:
        for forward in r["port_forwards"]:
            remote = int(str(forward).split(":")[-1])
            assert remote in container_ports(tilt, r["workload"]), (r["workload"], forward)


def test_unit_tests_run_as_a_local_resource(tilt: Recorder) -> None:
    (tests,) = tilt.local_resources
    assert tests["labels"]
    assert "tests/unit" in tests["deps"]
    makefile = (ROOT / "Makefile").read_text()
    target = re.fullmatch(r"make (\S+)", tests["cmd"])
    assert target, tests["cmd"]
    recipe = re.search(rf"^{re.escape(target[1])}:.*\n\t(.+)$", makefile, re.MULTILINE)
    assert recipe and "pytest tests/unit" in recipe[1]


def test_every_call_is_commented() -> None:
    """pixeltilt style: each top-level Tilt call says what it is for."""
    lines = TILTFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"[a-z_0-9]+\(", line):
            previous = next(p for p in reversed(lines[:number]) if p.strip())
            assert previous.startswith("#"), f"line {number + 1} has no comment: {line}"


def test_nothing_is_left_uncategorized(tilt: Recorder) -> None:
    """Objects other than workloads and their Services are grouped into a named resource."""
    listed = {f for r in tilt.resources for f in r["objects"]}
    pods = [
        d["spec"]["template"]["metadata"]["labels"]
        for d in tilt.manifests
        if d["kind"] in ("Deployment", "StatefulSet")
    ]
    for doc in tilt.manifests:
        fragment = f"{doc['metadata']['name']}:{doc['kind'].lower()}"
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            continue
        if doc["kind"] == "Service":
            selector = doc["spec"]["selector"]
            assert any(all(p.get(k) == v for k, v in selector.items()) for p in pods), fragment
            continue
        assert fragment in listed, f"{fragment} would be 'uncategorized' in Tilt"

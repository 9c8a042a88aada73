"""The Helm chart's containers as `podman run` arguments.

The chart is rendered with `helm template` and each container (and init container) of its
Deployments, hook Job and test hook Pod is translated field by field: command (Kubernetes'
`command` replaces the image's ENTRYPOINT),
args, environment (envFrom ConfigMaps, `value`, secretKeyRef and configMapKeyRef), the user of
the security contexts, the read-only root filesystem with the emptyDir volumes as tmpfs mounts,
dropped capabilities, no privilege escalation, the memory limit and the termination grace
period. What a container runs in the tests is then what the chart makes Kubernetes run.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "payout-service"
HELM = ROOT / ".tools" / "bin" / "helm"
INSTALL_HELM = ROOT / "scripts" / "install-helm.sh"
RELEASE = "payout-service"

_QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi|k|M|G)?$")
_FACTORS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


class HelmMissing(RuntimeError):
    """helm is not installed and scripts/install-helm.sh could not install it."""


def render_chart(values: Mapping[str, str | int]) -> list[dict[str, Any]]:
    """`helm template` of the chart with `--set key=value` for each item (strings verbatim)."""
    if not HELM.is_file():
        installed = subprocess.run(
            ["bash", str(INSTALL_HELM)], capture_output=True, text=True, timeout=600
        )
        if installed.returncode != 0 or not HELM.is_file():
            raise HelmMissing(installed.stderr.strip()[-500:])
    sets = [
        arg
        for key, value in values.items()
        for arg in ("--set" if isinstance(value, int) else "--set-string", f"{key}={value}")
    ]
    out = subprocess.run(
        [str(HELM), "template", RELEASE, str(CHART), *sets],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("64Mi", "256M", "1024") in bytes."""
    match = _QUANTITY.match(str(quantity))
    if match is None:
        raise ValueError(f"unsupported quantity {quantity!r}")
    return int(match.group(1)) * _FACTORS[match.group(2)]


@dataclass(frozen=True)
class ChartContainer:
    """One container of a rendered pod template, with what `podman run` needs of it."""

    name: str
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: Mapping[str, str]
    uid: int
    gid: int
    read_only_root: bool
    tmpfs: Mapping[str, int | None]  # mount path -> size limit in bytes
    cap_drop: tuple[str, ...]
    no_new_privileges: bool
    memory_limit: int | None
    grace_seconds: int

    def podman_run_args(self, container_name: str) -> list[str]:
        """Arguments of `podman run` after the subcommand (host network, detached)."""
        args = [
            "--name",
            container_name,
            "--network",
            "host",
            "--user",
            f"{self.uid}:{self.gid}",
            "--entrypoint",
            json.dumps(list(self.command)),
        ]
        if self.read_only_root:
            args.append("--read-only")
        for path, size in self.tmpfs.items():
            args += ["--tmpfs", f"{path}:rw,mode=1777" + (f",size={size}" if size else "")]
        for capability in self.cap_drop:
            args += ["--cap-drop", capability]
        if self.no_new_privileges:
            args += ["--security-opt", "no-new-privileges"]
        if self.memory_limit:
            args += ["--memory", str(self.memory_limit)]
        for key, value in self.env.items():
            args += ["--env", f"{key}={value}"]
        return [*args, self.image, *self.args]


def chart_containers(manifests: Iterable[dict[str, Any]]) -> dict[str, ChartContainer]:
    """Every container of the chart's Deployments, Jobs and (test hook) Pods, by container
    name; an init container as "<the pod's first container>/<its name>"."""
    docs = list(manifests)
    config_maps = {
        d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"
    }
    secrets = {
        d["metadata"]["name"]: {
            k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()
        }
        for d in docs
        if d["kind"] == "Secret"
    }
    found: dict[str, ChartContainer] = {}
    for doc in docs:
        if doc["kind"] not in ("Deployment", "Job", "Pod"):
            continue
        pod = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
        for container in pod["containers"]:
            found[container["name"]] = _container(pod, container, config_maps, secrets)
        for init in pod.get("initContainers") or []:
            key = f"{pod['containers'][0]['name']}/{init['name']}"
            found[key] = _container(pod, init, config_maps, secrets)
    return found


def _container(
    pod: dict[str, Any],
    container: dict[str, Any],
    config_maps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, Mapping[str, str]],
) -> ChartContainer:
    security = {**(pod.get("securityContext") or {}), **(container.get("securityContext") or {})}
    uid, gid = int(security["runAsUser"]), int(security.get("runAsGroup", security["runAsUser"]))
    if security.get("runAsNonRoot") and uid == 0:
        raise ValueError(f"{container['name']}: runAsNonRoot with runAsUser 0")
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    tmpfs: dict[str, int | None] = {}
    for mount in container.get("volumeMounts") or []:
        empty_dir = volumes[mount["name"]].get("emptyDir")
        if empty_dir is None:
            raise ValueError(f"{container['name']}: only emptyDir volumes translate to podman")
        limit = empty_dir.get("sizeLimit")
        tmpfs[mount["mountPath"]] = quantity_bytes(limit) if limit else None
    memory = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    return ChartContainer(
        name=container["name"],
        image=container["image"],
        command=tuple(container["command"]),
        args=tuple(container.get("args") or ()),
        env=_environment(container, config_maps, secrets),
        uid=uid,
        gid=gid,
        read_only_root=bool(security.get("readOnlyRootFilesystem")),
        tmpfs=tmpfs,
        cap_drop=tuple((security.get("capabilities") or {}).get("drop") or ()),
        no_new_privileges=security.get("allowPrivilegeEscalation") is False,
        memory_limit=quantity_bytes(memory) if memory else None,
        grace_seconds=int(pod.get("terminationGracePeriodSeconds", 30)),
    )


def _environment(
    container: dict[str, Any],
    config_maps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, Mapping[str, str]],
) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom first, then env."""
    sources = {"configMapKeyRef": config_maps, "secretKeyRef": secrets}
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        env.update(config_maps[source["configMapRef"]["name"]])
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ((kind, ref),) = item["valueFrom"].items()
        value = sources[kind].get(ref["name"], {}).get(ref["key"])
        if value is None and not ref.get("optional"):
            raise KeyError(f"{item['name']}: {ref['name']}/{ref['key']} is not rendered")
        if value is not None:
            env[item["name"]] = value
    return env

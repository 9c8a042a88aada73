"""Helpers of the deployment tests: helm, rendered manifests, the commands the images run.

`deploy_commands()` is the single answer to "what exactly do the containers run?": the
Dockerfile's ENTRYPOINT per target, the chart's container commands and docker-compose's
entrypoints. The e2e suite can start these same commands as local processes.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "payout-service"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
KIND_DIR = ROOT / "deploy" / "kind"
KIND_VALUES = KIND_DIR / "values-dev.yaml"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
INSTALL_HELM = ROOT / "scripts" / "install-helm.sh"
RELEASE = "payout-service"
NAMESPACE = "payouts"
WORKSPACE_PYPROJECTS = [
    ROOT / "libs" / "payout_core" / "pyproject.toml",
    ROOT / "services" / "api" / "pyproject.toml",
    ROOT / "services" / "processor" / "pyproject.toml",
]


# ----------------------------------------------------------------------------------- helm


class HelmUnavailable(RuntimeError):
    """helm is not installed and scripts/install-helm.sh could not install it."""


@functools.cache
def helm_binary() -> str:
    """Path of a working helm: .tools/bin, then PATH, else install it with the script."""
    local = ROOT / ".tools" / "bin" / "helm"
    if local.is_file():
        return str(local)
    found = shutil.which("helm")
    if found:
        return found
    try:
        proc = subprocess.run(
            ["bash", str(INSTALL_HELM)], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HelmUnavailable(f"scripts/install-helm.sh failed to run: {exc!r}") from exc
    if proc.returncode != 0 or not local.is_file():
        detail = (proc.stderr or proc.stdout).strip()[-500:]
        raise HelmUnavailable(f"scripts/install-helm.sh could not install helm: {detail}")
    return str(local)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {shlex.join(args)} failed:\n{proc.stderr}{proc.stdout}")
    return proc


def template_args(
    values_files: Iterable[Path] = (), sets: Iterable[str] = (), chart: Path = CHART
) -> list[str]:
    args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE]
    for path in values_files:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


def render(
    values_files: Iterable[Path] = (), sets: Iterable[str] = (), chart: Path = CHART
) -> list[dict[str, Any]]:
    """`helm template` output as a list of manifests (empty documents dropped)."""
    out = helm(*template_args(values_files, sets, chart)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def render_error(values_files: Iterable[Path] = (), sets: Iterable[str] = ()) -> str:
    """The error of a `helm template` that must fail (AssertionError when it succeeds)."""
    proc = helm(*template_args(values_files, sets), check=False)
    if proc.returncode == 0:
        raise AssertionError(f"helm template succeeded with {list(values_files)} {list(sets)}")
    return proc.stderr


@dataclass(frozen=True)
class Manifests:
    """The rendered objects of one values set, with lookups by kind and name."""

    docs: tuple[dict[str, Any], ...]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for doc in self.of_kind(kind):
            if doc["metadata"]["name"] == name:
                return doc
        names = [d["metadata"]["name"] for d in self.of_kind(kind)]
        raise KeyError(f"no {kind} named {name!r} (have {names})")

    def names(self, kind: str) -> set[str]:
        return {d["metadata"]["name"] for d in self.of_kind(kind)}

    def pod_specs(self) -> list[tuple[str, dict[str, Any]]]:
        """(kind/name, pod template) of every Deployment, Job and CronJob, and each Pod (its
        own template: metadata and spec)."""
        specs = []
        for doc in self.docs:
            where = f"{doc['kind']}/{doc['metadata']['name']}"
            if doc["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
                specs.append((where, doc["spec"]["template"]))
            elif doc["kind"] == "CronJob":
                specs.append((where, doc["spec"]["jobTemplate"]["spec"]["template"]))
            elif doc["kind"] == "Pod":
                specs.append((where, doc))
        return specs


def component_name(component: str) -> str:
    return f"{RELEASE}-{component}"


# ----------------------------------------------------------------------------- Dockerfile


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    value: str


@dataclass
class Stage:
    name: str | None
    base: str
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    result: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].strip())
            continue
        buffer.append(stripped)
        text = " ".join(part for part in buffer if part)
        buffer = []
        keyword, _, value = text.partition(" ")
        result.append(Instruction(start, keyword.upper(), value.strip()))
    return result


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
    for ins in dockerfile_instructions(path):
        if ins.keyword == "FROM":
            parts = ins.value.split()
            parts = [p for p in parts if not p.startswith("--")]
            base = re.sub(
                r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), m.group(0)), parts[0]
            )
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(name, base, []))
        elif not stages:
            if ins.keyword == "ARG" and "=" in ins.value:
                key, _, default = ins.value.partition("=")
                global_args[key.strip()] = default.strip().strip('"')
        else:
            stages[-1].instructions.append(ins)
    return stages


def stage(name: str, stages: list[Stage] | None = None) -> Stage:
    for s in stages or dockerfile_stages():
        if s.name == name:
            return s
    raise KeyError(f"no stage {name!r} in the Dockerfile")


def stage_chain(name: str, stages: list[Stage] | None = None) -> list[Stage]:
    """The stage and its ancestors (FROM <stage>), nearest first."""
    stages = stages or dockerfile_stages()
    chain = [stage(name, stages)]
    names = {s.name for s in stages}
    while chain[-1].base in names:
        chain.append(stage(chain[-1].base, stages))
    return chain


def exec_form(value: str) -> list[str]:
    """The JSON array of an exec-form ENTRYPOINT/CMD (ValueError for shell form)."""
    parsed = json.loads(value)
    if not isinstance(parsed, list) or not all(isinstance(p, str) for p in parsed):
        raise ValueError(f"not an exec-form array: {value}")
    return parsed


def image_entrypoint_and_cmd(target: str) -> tuple[list[str], list[str]]:
    """ENTRYPOINT and CMD of a Dockerfile target (the nearest stage that sets ENTRYPOINT)."""
    for s in stage_chain(target):
        entrypoint = s.last("ENTRYPOINT")
        if entrypoint is not None:
            cmd = s.last("CMD")
            return exec_form(entrypoint.value), exec_form(cmd.value) if cmd else []
    raise AssertionError(f"Dockerfile target {target!r} has no ENTRYPOINT")


def image_command(target: str) -> list[str]:
    """The command line a container of this Dockerfile target runs by default."""
    entrypoint, cmd = image_entrypoint_and_cmd(target)
    return entrypoint + cmd


# --------------------------------------------------------------------- console scripts


def console_scripts() -> dict[str, str]:
    """Console scripts of the workspace members: name -> "module:function"."""
    scripts: dict[str, str] = {}
    for path in WORKSPACE_PYPROJECTS:
        project = tomllib.loads(path.read_text())["project"]
        scripts.update(project.get("scripts", {}))
    return scripts


def compose_file() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def deploy_commands(manifests: Manifests | None = None) -> dict[str, list[str]]:
    """Every command line the images, the chart and docker-compose start, by origin.

    Keys: "image:<target>", "chart:<Kind>/<name>/<container>", "compose:<service>".
    """
    commands: dict[str, list[str]] = {}
    for target in ("api", "processor"):
        commands[f"image:{target}"] = image_command(target)
    if manifests is None:
        manifests = Manifests(tuple(render()))
    for where, template in manifests.pod_specs():
        for container in template["spec"]["containers"]:
            argv = list(container.get("command", [])) + list(container.get("args", []))
            commands[f"chart:{where}/{container['name']}"] = argv
    for name, service in compose_file()["services"].items():
        build = service.get("build")
        if not isinstance(build, dict):
            continue  # third-party images (postgres, rabbitmq, prometheus)
        entrypoint, cmd = image_entrypoint_and_cmd(build["target"])
        if "entrypoint" in service:  # overriding the entrypoint also resets CMD
            entrypoint, cmd = list(service["entrypoint"]), []
        if "command" in service:
            cmd = list(service["command"])
        commands[f"compose:{name}"] = entrypoint + cmd
    return commands

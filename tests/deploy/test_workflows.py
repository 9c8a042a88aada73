"""The GitHub Actions workflow (.github/workflows/ci.yml; `make lint` runs actionlint on it):
it runs what .ci/run runs, on PostgreSQL and RabbitMQ of the versions docker-compose.yml pins,
builds both images and pushes them only on main and version tags, and lints and packages the
chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .support import ROOT, compose_file, dockerfile_stages

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
CI_RUN = ROOT / ".ci" / "run"


def workflow() -> dict[str, Any]:
    # PyYAML reads the key `on` as the boolean True (YAML 1.1).
    document = yaml.safe_load(WORKFLOW.read_text())
    document["on"] = document.pop(True)
    return document


def run_lines(job: dict[str, Any]) -> list[str]:
    return [line for step in job["steps"] for line in step.get("run", "").splitlines()]


def test_service_containers_are_the_versions_compose_pins() -> None:
    services = workflow()["jobs"]["test"]["services"]
    compose = compose_file()["services"]
    assert services["postgres"]["image"] == compose["postgres"]["image"]
    assert services["rabbitmq"]["image"] == compose["rabbitmq"]["image"]
    assert "5432:5432" in services["postgres"]["ports"]
    assert "5672:5672" in services["rabbitmq"]["ports"]


def test_jobs_run_what_ci_run_runs() -> None:
    """Every `make` target of .ci/run is run by a job of the workflow, unchanged."""
    targets = [line.strip() for line in CI_RUN.read_text().splitlines() if line.startswith("make")]
    assert targets == ["make lint", "make test", "make test-soak", "make test-ha"]
    jobs = workflow()["jobs"]
    assert "make lint" in run_lines(jobs["lint"])
    assert "make test" in run_lines(jobs["test"])
    assert "make test-soak" in run_lines(jobs["test"])
    assert "sudo --preserve-env=PATH make test-ha" in run_lines(jobs["test-ha"])


def test_the_suite_reaches_the_service_containers() -> None:
    """The test job points the suite at its services: the URLs, and rabbitmqctl (the suite
    makes a vhost per run) through an executable wrapper around `docker exec`."""
    job = workflow()["jobs"]["test"]
    assert job["env"]["DATABASE_URL"].startswith("postgresql://postgres@127.0.0.1:5432/")
    assert job["env"]["AMQP_URL"].startswith("amqp://guest:guest@127.0.0.1:5672/")
    wrapper = ROOT / job["env"]["RABBITMQCTL"].split("}}/", 1)[1]
    assert wrapper.is_file() and wrapper.stat().st_mode & 0o111
    assert "docker exec" in wrapper.read_text()
    (make_test,) = [s for s in job["steps"] if s.get("run") == "make test"]
    assert make_test["env"]["RABBITMQ_CONTAINER"] == "${{ job.services.rabbitmq.id }}"


def test_both_images_are_built_and_pushed_only_on_main_and_version_tags() -> None:
    document = workflow()
    assert document["on"]["push"] == {"branches": ["main"], "tags": ["v*.*.*"]}
    job = document["jobs"]["images"]
    assert set(job["needs"]) == {"lint", "test"}, "only tested code is pushed"
    assert job["permissions"]["packages"] == "write"
    targets = job["strategy"]["matrix"]["target"]
    assert sorted(targets) == ["api", "processor"]
    assert set(targets) <= {stage.name for stage in dockerfile_stages()}
    steps = {step.get("uses", "").split("@")[0]: step for step in job["steps"]}
    meta = steps["docker/metadata-action"]["with"]
    assert meta["images"].startswith("ghcr.io/")
    tags = meta["tags"].split()
    assert "type=sha,format=long" in tags, "tagged by commit"
    assert "type=semver,pattern={{version}}" in tags, "tagged by version"
    build = steps["docker/build-push-action"]["with"]
    assert build["target"] == "${{ matrix.target }}"
    assert build["push"] == "${{ github.event_name == 'push' }}"


def test_chart_is_linted_and_packaged() -> None:
    lines = run_lines(workflow()["jobs"]["chart"])
    assert "make helm-lint" in lines
    assert any("helm package deploy/helm/payout-service" in line for line in lines)
    assert any("helm push" in line for line in lines)


def test_make_lint_checks_the_workflows() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "$(BIN)/actionlint" in recipe
    assert Path(WORKFLOW).is_file()

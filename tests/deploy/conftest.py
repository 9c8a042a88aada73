"""Fixtures of the deployment tests: helm and the chart rendered once per values set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.tools import tool_missing

from .support import CI_VALUES, KIND_VALUES, HelmUnavailable, Manifests, helm_binary, render

# Every values set the chart is rendered with: the defaults, each ci/*-values.yaml and the
# kind development values.
VALUE_SETS: dict[str, tuple[Path, ...]] = {
    "default": (),
    **{f"ci/{path.name}": (path,) for path in CI_VALUES},
    "kind/values-dev.yaml": (KIND_VALUES,),
}


@pytest.fixture(scope="session")
def helm_bin() -> str:
    try:
        return helm_binary()
    except HelmUnavailable as exc:
        tool_missing(f"helm is not available and could not be installed: {exc}")


@pytest.fixture(scope="session")
def rendered(helm_bin: str) -> Callable[[str], Manifests]:
    """rendered(name) -> the manifests of VALUE_SETS[name], rendered once per session."""
    cache: dict[str, Manifests] = {}

    def get(name: str) -> Manifests:
        if name not in cache:
            cache[name] = Manifests(tuple(render(VALUE_SETS[name])))
        return cache[name]

    return get


@pytest.fixture(params=sorted(VALUE_SETS))
def values_set(request: pytest.FixtureRequest) -> str:
    return request.param

"""The logs of a full run, both services as real processes: JSON lines with the fields one
needs, one request id followed across services, secrets masked."""

from __future__ import annotations

import json
import os
import subprocess

import aiohttp
import pytest

from payout_core.logging import mask
from payout_core.runtime import YOUNG_COLLECTION_THRESHOLD
from tests.e2e.conftest import BOOTSTRAP_KEY, Stack
from tests.e2e.traffic import WRONG_KEY, run_every_outcome
from tests.support import infra as infra_mod
from tests.support.infra import Infra
from tests.support.processes import BIN, ROOT

pytestmark = pytest.mark.e2e
REQUIRED = ("timestamp", "level", "service", "logger", "event", "request_id")
HTTP_FIELDS = ("method", "route", "path", "status", "duration_ms")


@pytest.fixture(params=["info", "debug"])
def stack_env(fresh_infra: Infra, request: pytest.FixtureRequest) -> dict[str, str]:
    # LOG_FORMAT unset: JSON must be the default when stderr is not a terminal (a file here).
    return fresh_infra.env(API_BOOTSTRAP_KEY=BOOTSTRAP_KEY, LOG_LEVEL=request.param, LOG_FORMAT="")


def parse_lines(text: str, source: str) -> list[dict]:
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"{source}:{number} is not JSON: {line[:300]!r}")
    return lines


def assert_required_fields(lines: list[dict], service: str) -> None:
    for line in lines:
        missing = [key for key in REQUIRED if key not in line]
        assert not missing, f"{service} line lacks {missing}: {line}"
        assert line["service"] == service, line


async def test_logs_are_json_follow_a_request_id_across_services_and_mask_secrets(
    stack: Stack, stack_env: dict[str, str]
):
    async with aiohttp.ClientSession() as session:
        traffic = await run_every_outcome(session, stack)
    assert [stack.api.stop(), stack.processor.stop()] == [0, 0]
    texts = {name: (stack.log_dir / f"{name}.log").read_text() for name in ("api", "processor")}
    api = parse_lines(texts["api"], "api.log")
    processor = parse_lines(texts["processor"], "processor.log")
    assert_required_fields(api, "api")
    assert_required_fields(processor, "processor")
    # Each settled its garbage collector once started (payout_core.runtime), before serving.
    for lines in (api, processor):
        settled = [line for line in lines if line["event"] == "garbage_collector_settled"]
        assert len(settled) == 1 and settled[0]["objects_frozen"] > 10_000, settled
        assert settled[0]["young_threshold"] == YOUNG_COLLECTION_THRESHOLD, settled

    # One line per request, without headers; probes only at debug.
    requests = [line for line in api if line["event"] == "http_request"]
    assert requests and all(set(HTTP_FIELDS) <= line.keys() for line in requests)
    assert not any("authorization" in key.lower() for line in api for key in line)
    probes = [line for line in requests if line["route"] in ("/readyz", "/healthz", "/metrics")]
    debug = stack_env["LOG_LEVEL"] == "debug"
    assert bool(probes) is debug and all(line["level"] == "debug" for line in probes)
    levels = {line["level"] for line in api + processor}
    assert ("debug" in levels) is debug, levels

    # grep the request id: the API's line for the creating request and every processor line
    # about that payout, which carries the same request id.
    for scenario, request_id in traffic.request_ids.items():
        payout_id = traffic.payout_ids[scenario]
        about = [line for line in processor if line.get("payout_id") == payout_id]
        assert about, f"no processor line for the {scenario} payout"
        assert {line["request_id"] for line in about} == {request_id}, about
        grepped = [
            json.loads(raw)
            for text in texts.values()
            for raw in text.splitlines()
            if request_id in raw
        ]
        assert {line.get("payout_id") for line in grepped} == {payout_id}, scenario
        if scenario != "dead_lettered":  # that one was written to the database by the test
            created = [line for line in grepped if line["service"] == "api"]
            assert [(c["method"], c["route"], c["status"]) for c in created] == [
                ("POST", "/api/payouts/", 201)
            ]
    deferred = [
        line["event"]
        for line in processor
        if line.get("payout_id") == traffic.payout_ids["deferred"]
    ]
    assert deferred.count("payout_deferred") == 2 and deferred[-1] == "payout_processed"

    # Secrets: never in full, anywhere; masked to their last 4 characters where logged.
    everything = "\n".join(texts.values())
    in_full = [
        s[:4] + "..." for s in (*traffic.accounts, BOOTSTRAP_KEY, WRONG_KEY) if s in everything
    ]
    assert not in_full, f"secrets in full in the logs: {in_full}"
    assert mask(BOOTSTRAP_KEY) in texts["api"]  # bootstrap_client_ready
    if debug:
        calls = [line for line in processor if line["event"] == "provider_call"]
        assert {line["account"] for line in calls} == {mask(a) for a in traffic.accounts}


def test_library_lines_are_json_too():
    """Alembic logs through the stdlib: `payout-admin migrate` on an empty database."""
    database = infra_mod.unique_name("payouts_logs")
    url = infra_mod.create_database(database)
    try:
        proc = subprocess.run(
            [str(BIN / "payout-admin"), "migrate"],
            env={**os.environ, "DATABASE_URL": url, "LOG_FORMAT": ""},
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
    finally:
        infra_mod.drop_database(database)
    assert proc.returncode == 0, proc.stderr
    lines = parse_lines(proc.stderr, "payout-admin stderr")
    assert_required_fields(lines, "admin")
    alembic = [line for line in lines if line["logger"].startswith("alembic")]
    assert any(line["event"].startswith("Running upgrade") for line in alembic), lines
    assert all(line["level"] == "info" for line in alembic)

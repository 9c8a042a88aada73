"""`payout-smoke-test`, the command of the chart's `helm test` Pod, against the
services as real processes: it passes on a healthy release and names what fails otherwise.
(tests/e2e/test_images.py runs the same command from the chart's Pod spec under podman.)"""

from __future__ import annotations

import os
import subprocess
from decimal import Decimal

import asyncpg
import pytest

from tests.e2e.conftest import Stack
from tests.support.processes import BIN, free_port

pytestmark = pytest.mark.e2e


def smoke(stack: Stack, key: str | None, processor_url: str | None = None):
    env = {k: v for k, v in os.environ.items() if k != "API_BOOTSTRAP_KEY"}
    if key is not None:
        env["API_BOOTSTRAP_KEY"] = key
    return subprocess.run(
        [
            str(BIN / "payout-smoke-test"),
            *("--api-url", stack.api.url),
            *("--processor-url", processor_url or stack.processor.url),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def helm_test_payouts(stack: Stack) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.infra.database_url)
    try:
        return await conn.fetch(
            "SELECT amount, currency FROM payouts WHERE metadata->>'source' = 'helm-test'"
        )
    finally:
        await conn.close()


async def test_smoke_passes_on_a_healthy_release_and_leaves_one_marked_payout(stack: Stack):
    proc = smoke(stack, stack.key)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["ok: api is ready", "ok: processor is ready"]
    assert lines[2].startswith("ok: payout ") and "created and read back" in lines[2]
    rows = await helm_test_payouts(stack)
    assert [(r["amount"], r["currency"]) for r in rows] == [(Decimal("0.01"), "EUR")]


def test_smoke_fails_without_the_bootstrap_key(stack: Stack):
    proc = smoke(stack, None)
    assert proc.returncode == 1
    assert "API_BOOTSTRAP_KEY is not set" in proc.stderr


def test_smoke_fails_on_a_wrong_key(stack: Stack):
    proc = smoke(stack, "sk_not_the_bootstrap_key_0000")
    assert proc.returncode == 1
    assert "FAIL: POST /api/payouts/ answered 401" in proc.stderr


def test_smoke_fails_when_the_processor_does_not_answer(stack: Stack):
    proc = smoke(stack, stack.key, processor_url=f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["ok: api is ready"]
    assert proc.stderr.startswith("FAIL: GET http://127.0.0.1:")

"""Scale-out: two API and two processor processes share one database and one queue."""

from __future__ import annotations

import time

import aiohttp
import pytest

from tests.e2e.conftest import Stack
from tests.support.load import create_payouts, mixed_body
from tests.support.payout_checks import (
    assert_all_terminal_and_sound,
    repeated_calls,
    wait_all_terminal,
)

pytestmark = pytest.mark.e2e
PAYOUTS = 5000
# Four processes at the default pool size (20) plus the suite's own connections come close to
# PostgreSQL's max_connections (100): "too many clients" would answer 503s.
POOL_SIZE = "12"


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, "DB_POOL_SIZE": POOL_SIZE}


async def processed_by(session: aiohttp.ClientSession, processor_url: str) -> float:
    async with session.get(f"{processor_url}/metrics") as resp:
        text = await resp.text()
    prefix = 'payout_messages_total{outcome="processed"} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


async def test_5000_payouts_on_two_apis_and_two_processors_each_paid_once(stack: Stack):
    api_2 = stack.new_api("api-2").start()
    processor_2 = stack.new_processor("processor-2").start()
    started = time.perf_counter()

    load = await create_payouts(
        [stack.api.url, api_2.url], stack.auth, count=PAYOUTS, concurrency=32, body=mixed_body
    )
    assert load.statuses == {201: PAYOUTS}, load.not_problems[:5]
    expected = {"processed": PAYOUTS - PAYOUTS // 50, "failed": PAYOUTS // 50}
    await wait_all_terminal(stack.infra.database_url, PAYOUTS, timeout=180)
    elapsed = time.perf_counter() - started
    await assert_all_terminal_and_sound(stack.infra.database_url, expected)
    async with aiohttp.ClientSession() as session:
        shares = [await processed_by(session, p.url) for p in (stack.processor, processor_2)]
    assert all(share > 0 for share in shares), shares
    print(
        f"\n{PAYOUTS} payouts: created in {load.seconds:.1f}s ({load.rate:.0f}/s), all terminal "
        f"after {elapsed:.1f}s ({PAYOUTS / elapsed:.0f}/s end to end); processed per processor "
        f"{shares}; repeated provider calls {await repeated_calls(stack.infra.database_url)}"
    )

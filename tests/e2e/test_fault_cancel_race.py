"""A client cancelling while the processor works on the same payout: each payout ends
cancelled or processed, and a cancelled payout never has an execution at the provider.

- In the window itself (the provider executed, its answer held at the pause point, our
  database still says `processing`): the cancel and the delete are refused with 409 and the
  payout ends processed, paid once.
- Under a real race (cancels fired at payouts the processor is taking): whatever the
  interleaving, no cancelled payout was paid and no processed one was paid twice.
"""

from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest

from tests.e2e.conftest import Stack
from tests.support.load import create_payouts
from tests.support.payout_checks import assert_all_terminal_and_sound, fetch, wait_all_terminal
from tests.support.polling import eventually
from tests.support.provider import executions, pause_control

pytestmark = pytest.mark.e2e
RACED = 60


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    """The processor waits a minute for the provider: a held answer stays in flight."""
    return {**stack_env, "PROVIDER_TIMEOUT_S": "60"}


async def status_of(stack: Stack, payout_id: str) -> str:
    rows = await fetch(
        stack.infra.database_url, f"SELECT status FROM payouts WHERE id = '{payout_id}'"
    )
    return str(rows[0][0])


async def test_a_cancel_in_the_window_is_refused_and_the_payout_is_paid_once(stack: Stack):
    await pause_control(stack.provider.url, "arm")
    (payout_id,) = (await create_payouts([stack.api.url], stack.auth, count=1)).created

    async def held() -> bool:
        return (await pause_control(stack.provider.url, "state"))["paused"] == 1

    await eventually(held, timeout=20, what="the execution held at the provider")
    assert (await executions(stack.infra.provider_database_url))[payout_id] == 1
    assert await status_of(stack, payout_id) == "processing"

    url = f"{stack.api.url}/api/payouts/{payout_id}/"
    async with aiohttp.ClientSession() as session:
        async with session.patch(url, json={"status": "cancelled"}, headers=stack.auth) as r:
            assert r.status == 409, await r.text()
            assert (await r.json())["type"] == "/problems/invalid-transition"
        async with session.delete(url, headers=stack.auth) as r:
            assert r.status == 409
    await pause_control(stack.provider.url, "release")
    await assert_all_terminal_and_sound(stack.infra.database_url, {"processed": 1})


async def test_cancels_racing_the_processor_never_leave_a_cancelled_payout_paid(stack: Stack):
    ids = (await create_payouts([stack.api.url], stack.auth, count=RACED)).created
    rng = random.Random(RACED)
    answers: list[int] = []

    async def cancel(session: aiohttp.ClientSession, payout_id: str) -> None:
        await asyncio.sleep(rng.uniform(0, 0.2))  # spread over the processor's work
        url = f"{stack.api.url}/api/payouts/{payout_id}/"
        async with session.patch(url, json={"status": "cancelled"}, headers=stack.auth) as r:
            answers.append(r.status)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(cancel(session, pid) for pid in ids))
    assert set(answers) <= {200, 409}, answers

    counts = await wait_all_terminal(stack.infra.database_url, RACED, timeout=60)
    assert set(counts) <= {"cancelled", "processed"}, counts
    assert counts["cancelled"] == answers.count(200), (counts, answers.count(200))
    paid = await executions(stack.infra.provider_database_url)
    rows = await fetch(stack.infra.database_url, "SELECT id::text, status FROM payouts")
    for payout_id, status in rows:
        assert paid[payout_id] == (1 if status == "processed" else 0), (payout_id, status)
    await assert_all_terminal_and_sound(stack.infra.database_url, dict(counts))
    print(f"\ncancels: {answers.count(200)} won, {answers.count(409)} too late")

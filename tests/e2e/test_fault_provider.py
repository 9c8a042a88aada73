"""The provider across a network, with real processes: a processor SIGKILLed exactly between
the provider's execution and our commit (the simulated provider's test-only pause point holds
its answer), the provider down for far longer than the processor's retry budget, and
reconcilers racing an in-flight payout and each other. Money is counted as executions in the
provider's own database."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_reconcile import strand_payouts
from tests.support.load import create_payouts
from tests.support.payout_checks import assert_all_terminal_and_sound, fetch, status_counts
from tests.support.polling import eventually
from tests.support.processes import run_admin
from tests.support.provider import executions, pause_control
from tests.support.scrape import metric_value

pytestmark = pytest.mark.e2e
# The retry budget is 50 + 100 + 200 + 400 ms (PROCESSOR_RETRY_BASE_MS=50, 5 attempts): the
# issue's 60 s run in the soak tier; make test's 5 s, six times the budget, is the same window.
PROVIDER_OUTAGES_S = [
    pytest.param(5.0, id="5s"),
    pytest.param(60.0, id="60s", marks=pytest.mark.soak),
]


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    """The processor waits a minute for the provider's answer: one held at the pause point
    stays in flight while the test acts in the window."""
    return {**stack_env, "PROVIDER_TIMEOUT_S": "60"}


async def create(stack: Stack, count: int) -> list[str]:
    load = await create_payouts([stack.api.url], stack.auth, count=count)
    assert load.statuses == {201: count}
    return load.created


async def payout_status(stack: Stack, payout_id: str) -> str:
    rows = await fetch(
        stack.infra.database_url, f"SELECT status FROM payouts WHERE id = '{payout_id}'"
    )
    return str(rows[0]["status"])


async def held_at_the_pause_point(stack: Stack) -> None:
    async def paused() -> bool:
        return (await pause_control(stack.provider.url, "state"))["paused"] == 1

    await eventually(paused, timeout=20, what="an execution held at the pause point")


async def test_processor_killed_between_the_providers_execution_and_our_commit_pays_once(
    stack: Stack,
):
    await pause_control(stack.provider.url, "arm")
    (payout_id,) = await create(stack, 1)
    await held_at_the_pause_point(stack)
    # The window: the money moved at the provider, our database does not know it yet.
    assert (await executions(stack.infra.provider_database_url))[payout_id] == 1
    assert await payout_status(stack, payout_id) == "processing"

    stack.processor.kill()  # SIGKILL: the answer will never reach it
    await pause_control(stack.provider.url, "release")
    stack.new_processor("processor-after-kill").start()

    await assert_all_terminal_and_sound(stack.infra.database_url, {"processed": 1}, timeout=60)
    assert (await executions(stack.infra.provider_database_url))[payout_id] == 1


@pytest.mark.parametrize("outage_s", PROVIDER_OUTAGES_S)
async def test_provider_down_far_longer_than_the_retries_delays_payouts_and_fails_none(
    outage_s: float, stack: Stack
):
    assert stack.provider.stop() == 0
    payouts = 20
    await create(stack, payouts)

    async def deferred_past_the_attempts() -> bool:
        value = await metric_value(
            stack.processor.url, "payout_deferrals_total", {"reason": "unreachable"}
        )
        return value > payouts * 5

    await eventually(deferred_past_the_attempts, timeout=30, what="payouts deferred, not failed")
    await asyncio.sleep(outage_s)  # the outage itself, not a wait for a condition
    assert (await status_counts(stack.infra.database_url))["failed"] == 0
    stack.restart_provider()

    await assert_all_terminal_and_sound(stack.infra.database_url, {"processed": payouts}, 60)
    retried = await metric_value(
        stack.processor.url, "payout_messages_total", {"outcome": "retried"}
    )
    assert retried == 0, "an outage used up attempts"


async def reconcile(stack: Stack, stuck_after: float = 0) -> tuple[int, int, int]:
    """`payout-admin reconcile --stuck-after N`: (re-enqueued, resolved, flagged)."""
    stdout = await run_admin(stack.env, "reconcile", "--stuck-after", str(stuck_after))
    found = re.search(r"re-enqueued (\d+) .* resolved (\d+) .* flagged (\d+)", stdout)
    assert found, stdout
    return int(found[1]), int(found[2]), int(found[3])


async def test_a_reconciler_racing_an_in_flight_payout_settles_it_by_lookup_paying_once(
    stack: Stack,
):
    await pause_control(stack.provider.url, "arm")
    (payout_id,) = await create(stack, 1)
    await held_at_the_pause_point(stack)  # the processor waits for the answer, in flight

    assert await reconcile(stack) == (0, 1, 0)  # the provider knows it: settled, not re-sent
    assert await payout_status(stack, payout_id) == "processed"
    await pause_control(stack.provider.url, "release")  # the processor's late finish: a no-op

    await assert_all_terminal_and_sound(stack.infra.database_url, {"processed": 1}, timeout=30)
    assert (await executions(stack.infra.provider_database_url))[payout_id] == 1


async def test_two_reconcilers_at_once_claim_each_stuck_payout_once_and_each_pays_once(
    stack: Stack,
):
    payouts = 40
    await strand_payouts(stack, payouts)  # messages lost, half left in processing

    # Stuck for 2 s: a payout re-enqueued by one reconciler is not stuck for the other.
    async def all_stuck() -> bool:
        rows = await fetch(
            stack.infra.database_url,
            "SELECT bool_and(updated_at < now() - interval '2 seconds') FROM payouts",
        )
        return bool(rows[0][0])

    await eventually(all_stuck, what="payouts stuck for 2 s")
    first, second = await asyncio.gather(reconcile(stack, 2), reconcile(stack, 2))
    assert first[0] + second[0] == payouts, (first, second)  # disjoint claims
    stack.new_processor("processor-after-reconcile").start()
    await assert_all_terminal_and_sound(stack.infra.database_url, {"processed": payouts}, 60)
    counts = await executions(stack.infra.provider_database_url)
    assert sorted(counts.values()) == [1] * payouts

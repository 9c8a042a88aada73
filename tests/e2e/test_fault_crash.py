"""Crashes and shutdowns: a processor SIGKILLed mid-batch while executions it asked for are held
at the provider (in the window between the provider's execution and our commit), SIGTERM on a
busy processor (in-flight work finished, or handed back when the grace period runs out) and on
a busy API (its outbox drained). In every case each payout ends terminal and is paid once."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.conftest import Stack
from tests.support.load import NO_ANSWER, LoadResult, create_payouts
from tests.support.payout_checks import (
    assert_all_terminal_and_sound,
    fetch,
    status_counts,
)
from tests.support.polling import eventually, eventually_holds
from tests.support.provider import executions, pause_control

pytestmark = pytest.mark.e2e
HELD = 4  # executions held at the provider's pause point when the processor is killed


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    """The processor waits a minute for the provider's answer, so that the answers held at the
    pause point are still awaited when it is killed."""
    return {**stack_env, "PROVIDER_TIMEOUT_S": "60"}


PROCESSING_IDS = "SELECT id::text FROM payouts WHERE status = 'processing'"


async def create_with_processor_stopped(stack: Stack, count: int) -> None:
    assert stack.processor.stop() == 0
    load = await create_payouts([stack.api.url], stack.auth, count=count)
    assert load.statuses == {201: count}, load.not_problems[:5]


async def wait_for_count(database_url: str, status: str, at_least: int) -> None:
    async def reached() -> bool:
        return (await status_counts(database_url))[status] >= at_least

    await eventually(reached, timeout=60, interval=0.02, what=f"{at_least} {status}")


async def test_processor_killed_mid_batch_then_restarted_pays_each_payout_exactly_once(
    stack: Stack,
):
    payouts, db = 1000, stack.infra.database_url
    await create_with_processor_stopped(stack, payouts)
    victim = stack.new_processor("processor-killed").start()
    await wait_for_count(db, "processed", payouts // 4)
    # Mid-batch, the next executions are held at the provider after its commit: the money has
    # moved and our database does not know it yet.
    for _ in range(HELD):
        await pause_control(stack.provider.url, "arm")

    async def held() -> bool:
        return (await pause_control(stack.provider.url, "state"))["paused"] == HELD

    await eventually(held, timeout=30, what=f"{HELD} executions held at the provider")

    victim.kill()  # SIGKILL: no shutdown code runs
    await pause_control(stack.provider.url, "release")
    at_kill = await status_counts(db)
    assert 0 < at_kill["processed"] < payouts, at_kill
    paid = await executions(stack.infra.provider_database_url)
    processing = {row[0] for row in await fetch(db, PROCESSING_IDS)}
    in_the_window = {pid for pid in processing if paid[pid] == 1}
    assert len(in_the_window) >= HELD, (len(in_the_window), dict(at_kill))

    stack.new_processor("processor-restarted").start()
    await assert_all_terminal_and_sound(db, {"processed": payouts})
    paid = await executions(stack.infra.provider_database_url)
    assert all(paid[pid] == 1 for pid in in_the_window)


@pytest.mark.parametrize(
    ("provider_delay_ms", "grace_s", "left_processing"),
    [
        ("300", "10", False),  # in-flight payouts finish within the grace period
        ("5000", "1", True),  # the grace period runs out: they are handed back
    ],
    ids=["finishes-in-flight", "hands-back-in-flight"],
)
async def test_processor_sigterm_exits_0_within_the_grace_period_losing_nothing(
    stack: Stack, provider_delay_ms: str, grace_s: str, left_processing: bool
):
    payouts, db = 100, stack.infra.database_url
    await create_with_processor_stopped(stack, payouts)
    stack.restart_provider(PROVIDER_DELAY_MS=provider_delay_ms)  # slow answers
    busy = stack.new_processor(
        "processor-busy", PROVIDER_TIMEOUT_S="30", SHUTDOWN_GRACE_S=grace_s
    ).start()
    await wait_for_count(db, "processing", 1)

    started = time.monotonic()
    assert busy.stop() == 0
    took = time.monotonic() - started
    assert took < float(grace_s) + 3, took  # the grace period, plus closing connections
    assert ((await status_counts(db))["processing"] > 0) is left_processing

    stack.new_processor("processor-next").start()
    await assert_all_terminal_and_sound(db, {"processed": payouts})


async def test_api_sigterm_under_load_exits_0_with_its_outbox_published(stack: Stack):
    answers, stop = LoadResult(), asyncio.Event()
    load = asyncio.create_task(
        create_payouts([stack.api.url], stack.auth, stop=stop, concurrency=16, result=answers)
    )
    await eventually_holds(lambda: len(answers.created) >= 100, timeout=30, what="load")

    assert await asyncio.to_thread(stack.api.stop) == 0  # the load goes on meanwhile
    stop.set()
    await load

    db = stack.infra.database_url
    unpublished = await fetch(db, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
    assert unpublished[0][0] == 0
    assert set(answers.statuses) <= {201, NO_ANSWER}, answers.statuses
    # What the client knows bounds what is stored: every 201, and at most the requests whose
    # answer was lost while the API stopped.
    stored = {row[0] for row in await fetch(db, "SELECT id::text FROM payouts")}
    assert set(answers.created) <= stored
    assert len(stored) <= len(answers.created) + answers.statuses[NO_ANSWER]
    await assert_all_terminal_and_sound(db, {"processed": len(stored)})

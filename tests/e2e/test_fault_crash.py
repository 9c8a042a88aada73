"""Crashes and shutdowns: a processor SIGKILLed mid-batch, SIGTERM on a busy processor (in-flight
work finished, or handed back when the grace period runs out) and on a busy API (its outbox
drained). In every case each payout ends terminal and is paid at most once."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.conftest import Stack
from tests.support.load import NO_ANSWER, LoadResult, create_payouts
from tests.support.payout_checks import (
    assert_all_terminal_and_sound,
    fetch,
    repeated_calls,
    status_counts,
)
from tests.support.polling import eventually, eventually_holds

pytestmark = pytest.mark.e2e


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

    victim.kill()  # SIGKILL: no shutdown code runs
    at_kill = await status_counts(db)
    assert 0 < at_kill["processed"] < payouts, at_kill

    stack.new_processor("processor-restarted").start()
    await assert_all_terminal_and_sound(db, {"processed": payouts})
    print(f"\nat the kill: {dict(at_kill)}; repeated provider calls {await repeated_calls(db)}")


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
    stored = (await status_counts(db)).total()
    assert stored >= len(answers.created)
    await assert_all_terminal_and_sound(db, {"processed": stored})

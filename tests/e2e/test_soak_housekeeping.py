"""Housekeeping under a long, steady load (issue 13, part 6: tables stay flat under a long
soak): API, processor and provider as real processes take payouts at a steady rate for two
minutes, with a trickle of poison messages that end as dead letters, and with retention
shortened to seconds so that housekeeping runs a hundred times. The outbox and the dead-letter
queue, sampled all along, stay under what the rate and the retention allow instead of growing
with the payouts taken; every payout ends terminal and sound. Soak tier: `make test-soak`.

Idempotency records (24 h; the load sends no keys) and webhook events and attempts (at least
30 days) are kept for windows no soak can outlast; their pruning is proven with backdated rows
in tests/integration/test_housekeeping.py and test_webhook_events.py. The soak prints the
events' count beside the others."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aio_pika
import pytest

from payout_core.messaging.contracts import EXCHANGE, QUEUE_DEAD, ROUTING_KEY_CREATED
from tests.e2e.conftest import Stack
from tests.support.infra import Infra
from tests.support.load import NO_ACCOUNT, LoadResult, create_payouts, mixed_body
from tests.support.payout_checks import assert_all_terminal_and_sound, fetch
from tests.support.scrape import metric_value

pytestmark = [pytest.mark.e2e, pytest.mark.soak]
SOAK_S = 120.0
PAYOUTS_PER_S = 75.0
POISON_PER_S = 2.0  # messages the processor dead-letters (not JSON)
KEEP_S = 2.0  # OUTBOX_KEEP_PUBLISHED_S and DEAD_LETTER_KEEP_S
INTERVAL_S = 1.0  # HOUSEKEEPING_INTERVAL_S
SAMPLE_EVERY_S = 2.0
# Beyond retention and interval: the relay's publish lag, a run's own length, a dead letter's
# death time (whole seconds), a busy machine's stalls (a quiet run stays within 5 s).
SLACK_S = 7.0


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {
        **stack_env,
        "HOUSEKEEPING_INTERVAL_S": str(INTERVAL_S),
        "OUTBOX_KEEP_PUBLISHED_S": str(KEEP_S),
        "DEAD_LETTER_KEEP_S": str(KEEP_S),
        "RATE_LIMIT_PER_S": "0",
    }


@dataclass(frozen=True)
class Sample:
    at_s: float
    outbox: int
    dead_letters: int
    webhook_events: int  # kept 30 days at least: it grows in a soak, as it should


async def poison(infra: Infra, stop: asyncio.Event) -> int:
    """Publish messages the processor cannot read (dead-lettered) at POISON_PER_S until stop."""
    connection = await aio_pika.connect(infra.amqp_url)
    sent = 0
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(EXCHANGE)
        while not stop.is_set():
            message = aio_pika.Message(b"not json", message_id=f"poison-{sent}")
            await exchange.publish(message, routing_key=ROUTING_KEY_CREATED)
            sent += 1
            await asyncio.sleep(1 / POISON_PER_S)  # pacing the trickle, not a wait
    return sent


async def sample(infra: Infra, channel: aio_pika.abc.AbstractChannel, at_s: float) -> Sample:
    rows = await fetch(
        infra.database_url,
        "SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM webhook_events)",
    )
    dead = await channel.declare_queue(QUEUE_DEAD, passive=True)
    outbox, webhook_events = rows[0]
    dead_letters = dead.declaration_result.message_count or 0
    return Sample(at_s, outbox, dead_letters, webhook_events)


async def test_outbox_and_dead_letters_stay_flat_under_a_long_soak(stack: Stack):
    stop = asyncio.Event()
    load = LoadResult()
    loading = asyncio.create_task(
        create_payouts(
            [stack.api.url],
            stack.auth,
            stop=stop,
            concurrency=16,
            body=mixed_body,
            result=load,
            per_second=PAYOUTS_PER_S,
        )
    )
    poisoning = asyncio.create_task(poison(stack.infra, stop))
    samples: list[Sample] = []
    connection = await aio_pika.connect(stack.infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < SOAK_S:
            samples.append(await sample(stack.infra, channel, elapsed))
            await asyncio.sleep(SAMPLE_EVERY_S)  # the sampling period, not a wait
        stop.set()
        await loading
        poisoned = await poisoning

        created = len(load.created)
        assert load.statuses == {201: created}, load.statuses
        rate = created / load.seconds
        print(f"\n{created} payouts at {rate:.0f}/s, {poisoned} poison messages, over")
        for s in samples:
            print(
                f"  {s.at_s:6.1f} s  outbox {s.outbox:6d}  dead letters {s.dead_letters:4d}"
                f"  webhook events (kept 30 days) {s.webhook_events:6d}"
            )
        assert rate > PAYOUTS_PER_S / 2, "the load fell far short of the soak's rate"
        # What retention allows: a row lives its retention, plus up to one interval until the
        # next run, plus the slack. Unpruned, the last third would hold two thirds of all.
        outbox_bound = rate * (KEEP_S + INTERVAL_S + SLACK_S)
        dead_bound = POISON_PER_S * (KEEP_S + INTERVAL_S + SLACK_S)
        assert outbox_bound < created / 4 and dead_bound < poisoned / 4, "bounds too loose"
        assert max(s.outbox for s in samples) > 0 and max(s.dead_letters for s in samples) > 0
        last_third = samples[len(samples) * 2 // 3 :]
        assert max(s.outbox for s in last_third) <= outbox_bound, outbox_bound
        assert max(s.dead_letters for s in last_third) <= dead_bound, dead_bound

    failed = await fetch(
        stack.infra.database_url,
        f"SELECT count(*) FROM payouts WHERE recipient_details->>'account' = '{NO_ACCOUNT}'",
    )
    expected_failed = int(failed[0][0])
    await assert_all_terminal_and_sound(
        stack.infra.database_url,
        {"processed": created - expected_failed, "failed": expected_failed},
        timeout=60,
    )
    runs = await metric_value(
        stack.processor.url, "payout_housekeeping_runs_total", {"result": "ran"}
    )
    assert runs >= SOAK_S / INTERVAL_S / 2, runs
    pruned = await metric_value(
        stack.processor.url, "payout_housekeeping_deleted_total", {"table": "outbox"}
    )
    assert pruned >= created - outbox_bound, pruned

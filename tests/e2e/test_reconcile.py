"""Stuck payouts: their messages lost (a purged queue), some left in processing as by a crash.
The processor's periodic reconciler and `payout-admin reconcile` put them back on the queue."""

from __future__ import annotations

import uuid

import aio_pika
import pytest

from payout_core.db.engine import create_engine
from payout_core.db.transitions import transition
from payout_core.domain.status import PayoutStatus
from payout_core.messaging.contracts import QUEUE_PROCESS
from tests.e2e.conftest import Stack
from tests.support.load import create_payouts
from tests.support.payout_checks import assert_all_terminal_and_sound, fetch
from tests.support.polling import eventually
from tests.support.processes import run_admin

pytestmark = pytest.mark.e2e
PAYOUTS = 20


async def strand_payouts(stack: Stack, payouts: int = PAYOUTS) -> None:
    """Payouts whose messages are gone: half still pending, half left in processing."""
    assert stack.processor.stop() == 0
    load = await create_payouts([stack.api.url], stack.auth, count=payouts)
    assert load.statuses == {201: payouts}
    db = stack.infra.database_url

    async def all_published() -> bool:
        rows = await fetch(db, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        return rows[0][0] == 0

    await eventually(all_published, what="outbox published")
    connection = await aio_pika.connect(stack.infra.amqp_url)
    async with connection:
        queue = await (await connection.channel()).get_queue(QUEUE_PROCESS)
        purged = await queue.purge()
    assert purged.message_count == payouts

    engine = create_engine(db, pool_size=1)
    async with engine.begin() as conn:
        for payout_id in load.created[: payouts // 2]:
            await transition(
                conn,
                uuid.UUID(payout_id),
                PayoutStatus.PENDING,
                PayoutStatus.PROCESSING,
                reason="processing_started",
            )
    await engine.dispose()


async def test_the_processor_reconciler_re_enqueues_stuck_payouts(stack: Stack):
    await strand_payouts(stack)
    stack.new_processor(
        "processor-reconciling", RECONCILE_INTERVAL_S="0.5", RECONCILE_STUCK_AFTER_S="1"
    ).start()
    await assert_all_terminal_and_sound(stack.infra.database_url, {"processed": PAYOUTS}, 30)


async def test_payout_admin_reconcile_re_enqueues_stuck_payouts(stack: Stack):
    await strand_payouts(stack)
    stdout = await run_admin(stack.env, "reconcile", "--stuck-after", "0")
    assert f"re-enqueued {PAYOUTS} stuck payout(s)" in stdout
    stack.new_processor("processor-after-admin").start()  # default: no reconciling for 30 s
    await assert_all_terminal_and_sound(stack.infra.database_url, {"processed": PAYOUTS}, 30)

"""The processor SIGKILLed after it committed a payout's outcome and before its ack reached
RabbitMQ (hit exactly by a proxy that reads AMQP frames and kills the processor at its first
basic.ack): the message is delivered again, the next processor skips it, and every payout is
processed once."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from tests.e2e.conftest import Stack
from tests.support.load import create_payouts
from tests.support.payout_checks import assert_all_terminal_and_sound, status_counts
from tests.support.polling import eventually_holds
from tests.support.scrape import scrape
from tests.support.tcp_proxy import TcpProxy
from tests.support.wire_taps import BASIC_ACK, AmqpFrameTrap, Window

pytestmark = pytest.mark.e2e
PAYOUTS = 10


async def test_processor_killed_between_commit_and_ack_pays_each_payout_once(
    stack: Stack, tcp_proxy: Callable[..., TcpProxy]
):
    db, amqp_url = stack.infra.database_url, stack.env["AMQP_URL"]
    assert stack.processor.stop() == 0
    load = await create_payouts([stack.api.url], stack.auth, count=PAYOUTS)
    assert load.statuses == {201: PAYOUTS}, load.not_problems[:5]

    window = Window(times=1)
    proxy = tcp_proxy(amqp_url, lambda: AmqpFrameTrap(window, BASIC_ACK, "to_server"))
    trapped = stack.new_processor("processor-trapped", AMQP_URL=proxy.proxied(amqp_url))
    window.action = trapped.kill  # SIGKILL, from the proxy, at that frame
    trapped.start(wait_ready=False)
    await eventually_holds(lambda: not trapped.running, timeout=30, what="the kill at the ack")
    assert window.hits, "the processor's ack was never intercepted"
    # Its outcome was committed before the ack it never delivered.
    at_kill = await status_counts(db)
    assert at_kill["processed"] >= 1, at_kill

    successor = stack.new_processor("processor-next").start()
    await assert_all_terminal_and_sound(db, {"processed": PAYOUTS})
    async with aiohttp.ClientSession() as session:
        metrics = await scrape(session, successor.url)
    assert metrics.value("payout_messages_total", outcome="skipped_duplicate") >= 1
    assert len(window.hits) == 1

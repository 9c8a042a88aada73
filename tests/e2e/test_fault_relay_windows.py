"""The dangerous moments of the API's outbox relay, each hit exactly by a proxy between the API
and RabbitMQ that reads AMQP frames:

- the API SIGKILLed after the payout was committed and before it was published (the proxy
  sees the relay's basic.publish): the next API's relay publishes it;
- the API SIGKILLed after the broker confirmed the message and before the relay recorded
  `published_at` (the proxy sees the broker's basic.ack): the message is published again, and
  the processor skips the duplicate;
- the broker connection lost with that confirm in flight, the API alive: it reconnects and
  publishes again; the duplicate is skipped.

Every time the payout is processed, once."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from tests.e2e.conftest import Stack
from tests.support.load import payout_body
from tests.support.payout_checks import assert_all_terminal_and_sound, fetch
from tests.support.polling import eventually, eventually_holds
from tests.support.processes import Service
from tests.support.scrape import scrape
from tests.support.tcp_proxy import TcpProxy
from tests.support.wire_taps import BASIC_ACK, BASIC_PUBLISH, AmqpFrameTrap, Window

pytestmark = pytest.mark.e2e


async def skipped_duplicates(processor: Service) -> float:
    async with aiohttp.ClientSession() as session:
        metrics = await scrape(session, processor.url)
    return metrics.value("payout_messages_total", outcome="skipped_duplicate")


@pytest.mark.parametrize(
    ("method", "direction", "kill", "duplicates"),
    [
        pytest.param(BASIC_PUBLISH, "to_server", True, 0, id="killed-after-commit-before-publish"),
        pytest.param(BASIC_ACK, "to_client", True, 1, id="killed-after-confirm"),
        pytest.param(BASIC_ACK, "to_client", False, 1, id="connection-lost-with-confirm-in-flight"),
    ],
)
async def test_a_relay_window_loses_nothing_and_pays_once(
    stack: Stack,
    tcp_proxy: Callable[..., TcpProxy],
    method: tuple[int, int],
    direction: str,
    kill: bool,
    duplicates: int,
):
    db, amqp_url = stack.infra.database_url, stack.env["AMQP_URL"]
    # Only the trapped API may relay: the stack's own would race it to the outbox row.
    assert stack.api.stop() == 0
    window = Window(times=1)
    proxy = tcp_proxy(amqp_url, lambda: AmqpFrameTrap(window, method, direction))
    trapped = stack.new_api("api-trapped", AMQP_URL=proxy.proxied(amqp_url))
    if kill:
        window.action = trapped.kill  # SIGKILL, from the proxy, at that frame
    trapped.start()

    async with aiohttp.ClientSession() as session:
        url = f"{trapped.url}/api/payouts/"
        async with session.post(url, json=payout_body(), headers=stack.auth) as response:
            assert response.status == 201
            payout_id = (await response.json())["id"]

    if kill:
        await eventually_holds(lambda: not trapped.running, timeout=20, what="the API killed")
        assert window.hits, "the relay's frame was never intercepted"
        (published_at,) = [row[0] for row in await fetch(db, "SELECT published_at FROM outbox")]
        assert published_at is None, "the window is before published_at is written"
        stack.new_api("api-next").start()
    await assert_all_terminal_and_sound(db, {"processed": 1})
    assert [row[0] for row in await fetch(db, "SELECT id::text FROM payouts")] == [payout_id]

    async def duplicates_skipped() -> bool:
        return await skipped_duplicates(stack.processor) >= duplicates

    await eventually(duplicates_skipped, timeout=20, what="the duplicate delivery skipped")
    assert await skipped_duplicates(stack.processor) == duplicates
    assert len(window.hits) == 1, "the relay's frame was never intercepted"

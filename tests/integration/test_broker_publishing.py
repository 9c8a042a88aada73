"""Publishing on the machine's RabbitMQ: a batch that fails leaves its channel behind, the
next batch goes out on a new one (a channel can keep nacking after a quorum queue's leader
is lost, rabbitmq-server#15333; a nack from a full queue is how this test gets one)."""

from __future__ import annotations

import aio_pika
import pytest

from payout_core.messaging.broker import Broker, BrokerUnavailable, OutgoingMessage
from payout_core.messaging.contracts import EXCHANGE
from payout_core.settings import Settings

FULL = "test.publishing.full"


async def _full_queue(settings: Settings) -> None:
    """A queue bound to the payouts exchange that takes one message and nacks the rest."""
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            FULL,
            auto_delete=False,
            arguments={"x-max-length": 1, "x-overflow": "reject-publish"},
        )
        await queue.purge()
        await queue.bind(EXCHANGE, routing_key=FULL)


async def _purge(settings: Settings) -> None:
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        await (await channel.get_queue(FULL)).purge()


def message(n: int) -> OutgoingMessage:
    return OutgoingMessage(FULL, b"{}", f"publishing-{n}")


async def test_a_failed_batch_replaces_the_channel_and_a_good_one_keeps_it(
    broker: Broker, settings: Settings
):
    await _full_queue(settings)
    await broker.publish_batch([message(1)])
    await broker.publish_batch([])  # nothing to publish: still the same channel
    assert broker.publishing_channels_opened == 1

    with pytest.raises(BrokerUnavailable, match="2 of 2 publishes failed"):
        await broker.publish_batch([message(2), message(3)])  # the queue is full: both nacked
    assert broker.publishing_channels_opened == 1  # replaced lazily, by the next batch

    await _purge(settings)
    await broker.publish_batch([message(4)])
    assert broker.publishing_channels_opened == 2
    await _purge(settings)
    await broker.publish_batch([message(5)])
    assert broker.publishing_channels_opened == 2

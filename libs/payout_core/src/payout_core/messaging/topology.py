"""Exchanges and queues, declared idempotently by both services at start."""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from payout_core.messaging.contracts import (
    DEAD_LETTER_EXCHANGE,
    DELIVERY_LIMIT,
    EXCHANGE,
    QUEUE_DEAD,
    QUEUE_PROCESS,
    ROUTING_KEY_CREATED,
    retry_delays_ms,
    retry_queue_name,
)
from payout_core.webhooks.queues import declare_webhook_queue


@dataclass
class Topology:
    exchange: AbstractExchange
    process_queue: AbstractQueue
    dead_queue: AbstractQueue


async def declare_topology(
    channel: AbstractChannel, retry_base_ms: int = 1000, max_attempts: int = 5
) -> Topology:
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    dead = await channel.declare_queue(
        QUEUE_DEAD, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead.bind(dlx, routing_key=QUEUE_DEAD)
    process = await channel.declare_queue(
        QUEUE_PROCESS,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            # RabbitMQ 3.10 has no default limit: a message redelivered this often is poison.
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": QUEUE_DEAD,
        },
    )
    await process.bind(exchange, routing_key=ROUTING_KEY_CREATED)
    # One delay queue per backoff step: messages wait out the TTL, then dead-letter back
    # to the work queue through the default exchange.
    for delay_ms in retry_delays_ms(retry_base_ms, max_attempts):
        await channel.declare_queue(
            retry_queue_name(delay_ms),
            durable=True,
            arguments={
                "x-message-ttl": delay_ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": QUEUE_PROCESS,
            },
        )
    await declare_webhook_queue(channel, exchange)
    return Topology(exchange=exchange, process_queue=process, dead_queue=dead)

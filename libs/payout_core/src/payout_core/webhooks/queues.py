"""The webhook queues. `payouts.webhooks` takes the fan-out message of an event (from the
outbox: `{"event_id"}`) and the per-endpoint deliveries (`{"event_id", "endpoint_id"}`, with
the attempt in x-attempt); a failed attempt waits in a delay queue (per-message TTL is not
used: one queue per wait of WEBHOOK_RETRY_SCHEDULE_S) and dead-letters back. All are quorum
queues: the processor declares them when it connects, and a classic queue whose node is down
cannot be declared, which would keep it from reconnecting to the nodes that are up."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from payout_core.messaging.contracts import DELIVERY_LIMIT, MalformedMessage
from payout_core.messaging.queue_arguments import QUORUM, delay_queue_arguments

WEBHOOK_QUEUE = "payouts.webhooks"
ROUTING_KEY_EVENT = "webhook.event"
DELAY_QUEUE_PREFIX = "payouts.webhooks.delay."


def delay_queue_name(delay_s: float) -> str:
    return f"{DELAY_QUEUE_PREFIX}{round(delay_s * 1000)}ms"


async def declare_webhook_queue(channel: AbstractChannel, exchange: AbstractExchange) -> None:
    """Declared by both services (the API's relay publishes to it; an unroutable message would
    hold up the outbox)."""
    queue = await channel.declare_queue(
        WEBHOOK_QUEUE,
        durable=True,
        arguments={**QUORUM, "x-delivery-limit": DELIVERY_LIMIT},
    )
    await queue.bind(exchange, routing_key=ROUTING_KEY_EVENT)


async def declare_delay_queues(
    channel: AbstractChannel, schedule: Iterable[float]
) -> list[AbstractQueue]:
    return [
        await channel.declare_queue(
            delay_queue_name(delay_s),
            durable=True,
            arguments=delay_queue_arguments(round(delay_s * 1000), WEBHOOK_QUEUE),
        )
        for delay_s in sorted(set(schedule))
    ]


@dataclass(frozen=True)
class DeliveryOrder:
    """Deliver an event: to one endpoint, or (endpoint_id None) to every matching one."""

    event_id: uuid.UUID
    endpoint_id: uuid.UUID | None = None

    def to_payload(self) -> dict[str, str]:
        payload = {"event_id": str(self.event_id)}
        if self.endpoint_id is not None:
            payload["endpoint_id"] = str(self.endpoint_id)
        return payload

    def to_body(self) -> bytes:
        return orjson.dumps(self.to_payload())

    @classmethod
    def from_body(cls, body: bytes) -> DeliveryOrder:
        try:
            data = orjson.loads(body)
            endpoint = data.get("endpoint_id")
            return cls(
                uuid.UUID(str(data["event_id"])), None if endpoint is None else uuid.UUID(endpoint)
            )
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"not a webhook delivery order: {exc}") from None

"""The arguments that make a queue survive the loss of a RabbitMQ node: one place for the
payout topology and the webhook queues alike (a classic queue lives on one node, and while
that node is down even declaring it fails, which stops the whole connection)."""

from __future__ import annotations

from typing import Any

QUORUM = {"x-queue-type": "quorum"}
# At-least-once dead-lettering needs the source queue to refuse publishes when full (RabbitMQ
# falls back to at-most-once with drop-head).
AT_LEAST_ONCE = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


def delay_queue_arguments(delay_ms: int, back_to: str) -> dict[str, Any]:
    """A delay step: messages wait out the TTL, then go back to the queue `back_to`."""
    return {
        **QUORUM,
        **AT_LEAST_ONCE,
        "x-message-ttl": delay_ms,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": back_to,
    }

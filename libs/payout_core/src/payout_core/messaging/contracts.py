"""The message contract between the API (producer) and the processor (consumer).

Version 1 body (JSON): {"version": 1, "type": "payout.created", "payout_id": "<uuid>",
"created_at": "<ISO 8601>"}. Headers: x-request-id (the HTTP request that created the payout),
x-attempt (1-based processing attempt, set by the processor's retry path).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson

EXCHANGE = "payouts"
DEAD_LETTER_EXCHANGE = "payouts.dlx"
ROUTING_KEY_CREATED = "payout.created"
QUEUE_PROCESS = "payouts.process"
QUEUE_DEAD = "payouts.dead"
# Quorum delay queues (replicated); "payouts.retry.<ms>ms" were classic ones (see topology.py).
RETRY_QUEUE_PREFIX = "payouts.delay."
LEGACY_RETRY_QUEUE_PREFIX = "payouts.retry."
HEADER_REQUEST_ID = "x-request-id"
HEADER_ATTEMPT = "x-attempt"
CONTRACT_VERSION = 1
# Redeliveries the quorum queue allows before it dead-letters a message (poison guard).
DELIVERY_LIMIT = 20
# The dead-letter queue holds at most this many messages; past it, RabbitMQ refuses more and
# the source queues keep theirs (at-least-once dead-lettering), so none is dropped silently.
DEAD_LETTER_MAX_LENGTH = 100_000


class MalformedMessage(ValueError):
    """A message body that does not follow the contract."""


@dataclass(frozen=True)
class PayoutCreated:
    payout_id: uuid.UUID
    created_at: datetime

    def to_payload(self) -> dict[str, object]:
        return {
            "version": CONTRACT_VERSION,
            "type": ROUTING_KEY_CREATED,
            "payout_id": str(self.payout_id),
            "created_at": self.created_at.isoformat(),
        }

    def to_body(self) -> bytes:
        return orjson.dumps(self.to_payload())

    @classmethod
    def from_body(cls, body: bytes) -> PayoutCreated:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedMessage(f"body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MalformedMessage("body is not a JSON object")
        if data.get("version") != CONTRACT_VERSION:
            raise MalformedMessage(f"unsupported contract version {data.get('version')!r}")
        if data.get("type") != ROUTING_KEY_CREATED:
            raise MalformedMessage(f"unexpected message type {data.get('type')!r}")
        try:
            payout_id = uuid.UUID(str(data["payout_id"]))
            created_at = datetime.fromisoformat(str(data["created_at"]))
        except (KeyError, ValueError) as exc:
            raise MalformedMessage(f"bad field: {exc}") from None
        return cls(payout_id=payout_id, created_at=created_at)


def retry_queue_name(delay_ms: int, prefix: str = RETRY_QUEUE_PREFIX) -> str:
    return f"{prefix}{delay_ms}ms"


def retry_delays_ms(base_ms: int, max_attempts: int) -> list[int]:
    """Exponential backoff: the wait before attempt 2, 3, ... max_attempts."""
    return [base_ms * 2**i for i in range(max(0, max_attempts - 1))]

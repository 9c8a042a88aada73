"""Webhook events as clients see them: `{"id": "evt_…", "type", "created_at", "data":
{"object": <the payout as GET /api/payouts/{id}/ returned it then>}}`.

The rows are written by a trigger (migration 0004) with the payout row as JSON; this module
turns that snapshot back into the row the API renders, so both use one rendering."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import RowMapping

from payout_core.domain.status import PayoutStatus
from payout_core.representation import dumps, payout_json

# payout.created for a new (pending) payout, then one per status it moves to.
EVENT_TYPES = (
    "payout.created",
    *(f"payout.{s.value}" for s in PayoutStatus if s is not PayoutStatus.PENDING),
)
ALL_EVENTS = "*"
EVENT_ID_PREFIX = "evt_"
_TIMESTAMPS = ("created_at", "updated_at", "processed_at")


def public_event_id(event_id: uuid.UUID) -> str:
    return EVENT_ID_PREFIX + event_id.hex


def parse_event_id(text: str) -> uuid.UUID | None:
    """The event's key, or None for anything that is not an id this API issued."""
    if not text.startswith(EVENT_ID_PREFIX) or len(text) != len(EVENT_ID_PREFIX) + 32:
        return None
    try:
        return uuid.UUID(hex=text[len(EVENT_ID_PREFIX) :])
    except ValueError:
        return None


def _timestamp(raw: str | None) -> datetime | None:
    return None if raw is None else datetime.fromisoformat(raw).astimezone(UTC)


def snapshot_row(payout: Mapping[str, Any]) -> dict[str, Any]:
    """The payout row (as the database returns it) from the trigger's to_jsonb snapshot."""
    row = dict(payout)
    row["amount"] = Decimal(row["amount"])
    for name in _TIMESTAMPS:
        row[name] = _timestamp(row.get(name))
    return row


def event_json(row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
    """A webhook_events row as the event object."""
    return {
        "id": public_event_id(row["id"]),
        "type": row["type"],
        "created_at": row["created_at"],
        "data": {"object": payout_json(snapshot_row(row["payout"]))},
    }


def event_body(row: Mapping[str, Any] | RowMapping) -> bytes:
    """The bytes delivered (and signed): the same on every attempt."""
    return dumps(event_json(row))


def matches(enabled_events: list[str], event_type: str) -> bool:
    return ALL_EVENTS in enabled_events or event_type in enabled_events

"""Webhook endpoints and delivery attempts as the JSON the API returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import RowMapping

from payout_core.webhooks.events import public_event_id


def endpoint_json(row: Mapping[str, Any] | RowMapping, secret: str | None = None) -> dict[str, Any]:
    body = {
        "id": str(row["id"]),
        "url": row["url"],
        "description": row["description"],
        "enabled_events": list(row["enabled_events"]),
        "status": row["status"],
        "disabled_reason": row["disabled_reason"],
        "failing_since": row["failing_since"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
    if secret is not None:
        body["secret"] = secret
    return body


def attempt_json(row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
    return {
        "event_id": public_event_id(row["event_id"]),
        "event_type": row["event_type"],
        "attempt": row["attempt"],
        "at": row["at"],
        "succeeded": row["succeeded"],
        "response_status": row["response_status"],
        "duration_ms": row["duration_ms"],
        "error": row["error"],
    }

"""Examples for the OpenAPI document, rendered by the same code as the API's responses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from payout_api.pagination import NEXT, Cursor
from payout_api.representation import dumps, event_json, payout_json
from payout_core.db.transitions import NEW_PAYOUT
from payout_core.domain.failures import failure_message

EXAMPLE_PAYOUT_ID = "0b8f5c4e-2f1a-4c59-9a51-1f2e3d4c5b6a"
EXAMPLE_REQUEST_ID = "6f1c2d3e4b5a69788796a5b4c3d2e1f0"
RECIPIENT = {"account": "DE89370400440532013000", "name": "Jane Doe", "bank_code": "COBADEFFXXX"}
DETAILS = {"description": "Invoice 6735", "metadata": {"order_id": "6735"}}
CREATED = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
PROCESSED = datetime(2025, 1, 15, 10, 30, 2, 250000, tzinfo=UTC)

_SAMPLE_ROW: dict[str, Any] = {
    "id": EXAMPLE_PAYOUT_ID,
    "amount": Decimal("100.50"),
    "currency": "USD",
    "recipient_details": RECIPIENT,
    **DETAILS,
    **NEW_PAYOUT,
    "created_at": CREATED,
    "updated_at": CREATED,
}

CREATE_EXAMPLES = {
    "minimal": {
        "summary": "The required fields",
        "value": {
            "amount": "100.50",
            "currency": "USD",
            "recipient_details": {"account": RECIPIENT["account"], "name": RECIPIENT["name"]},
        },
    },
    "full": {
        "summary": "Every field",
        "value": {"amount": "2500", "currency": "JPY", "recipient_details": RECIPIENT, **DETAILS},
    },
}

UPDATE_EXAMPLES = {
    "cancel": {"summary": "Cancel a pending payout", "value": {"status": "cancelled"}},
    "amount": {"summary": "Change the amount", "value": {"amount": "120.00"}},
}


def _as_json(data: Any) -> Any:
    return orjson.loads(dumps(data))


def _payout(**changes: Any) -> dict[str, Any]:
    return _as_json(payout_json({**_SAMPLE_ROW, **changes}))


def payout_examples() -> dict[str, dict[str, Any]]:
    """Named examples of payouts, a page and a history (components/examples)."""
    processed = {"updated_at": PROCESSED, "processed_at": PROCESSED, "version": 3}
    cursor = Cursor(NEXT, CREATED, uuid.UUID(EXAMPLE_PAYOUT_ID)).encode()
    history = [
        (None, "pending", CREATED, "created"),
        ("pending", "processing", PROCESSED, "processing_started"),
        ("processing", "processed", PROCESSED, "provider_succeeded"),
    ]
    return {
        "payout-pending": {"summary": "A new payout", "value": _payout()},
        "payout-processed": {
            "summary": "A paid payout",
            "value": _payout(status="processed", **processed),
        },
        "payout-failed": {
            "summary": "A failed payout",
            "value": _payout(
                status="failed",
                failure_code="no_account",
                failure_message=failure_message("no_account"),
                **processed,
            ),
        },
        "payout-page": {
            "summary": "A page of payouts",
            "value": {
                "results": [_payout()],
                "next": f"http://127.0.0.1:8000/api/payouts/?limit=1&cursor={cursor}",
                "previous": None,
            },
        },
        "payout-events": {
            "summary": "The history of a paid payout",
            "value": {
                "results": _as_json(
                    [
                        event_json({"from_status": f, "to_status": t, "at": at, "reason": r})
                        for f, t, at, r in history
                    ]
                )
            },
        },
    }

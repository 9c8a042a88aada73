"""Payout rows as the JSON the API returns (see payout_api.schemas.PayoutSchema): shared by
the API and webhook events, whose data.object is the payout exactly as GET returns it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import RowMapping

from payout_core.domain.failures import is_retryable
from payout_core.domain.money import format_amount


def payout_json(row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
    details = row["recipient_details"]
    return {
        "id": str(row["id"]),
        "amount": format_amount(row["amount"], row["currency"]),
        "currency": row["currency"],
        "recipient_details": {
            "account": details["account"],
            "name": details["name"],
            "bank_code": details.get("bank_code"),
        },
        "description": row["description"],
        "metadata": row["metadata"],
        "status": row["status"],
        "failure_code": row["failure_code"],
        "failure_message": row["failure_message"],
        "failure_retryable": is_retryable(row["failure_code"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "processed_at": row["processed_at"],
        "version": row["version"],
    }


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)

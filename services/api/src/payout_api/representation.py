"""Payout rows as the JSON the API returns (see payout_api.schemas.PayoutSchema)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import RowMapping

from payout_core.representation import dumps, payout_json

__all__ = ["dumps", "event_json", "payout_json"]


def event_json(row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
    return {
        "from": row["from_status"],
        "to": row["to_status"],
        "at": row["at"],
        "reason": row["reason"],
    }

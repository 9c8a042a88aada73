"""The trace context of a status change, handed to the trigger that writes its webhook event.

The trigger (migration 0006) copies the W3C headers of the changed payout from the
transaction-local setting `payouts.trace_context` (a JSON object: payout id -> headers) into
the webhook fan-out outbox row, so the relay publishes it, and the processor delivers it, in
the trace of the request or the processing that changed the status. Tracing off: nothing is
set (None below), and the trigger writes no headers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from payout_core.tracing import context_headers

SETTING = "payouts.trace_context"

# A common table expression for a statement that changes statuses, binding :trace_context
# (text, None: nothing set). A statement evaluates it by joining it (LEFT JOIN ... ON true):
# the setting is then in place before the trigger fires, at the end of the statement.
SET_IN_STATEMENT = f"""trace_context AS (
    SELECT set_config('{SETTING}', :trace_context, true)
    WHERE CAST(:trace_context AS text) IS NOT NULL
)"""


def setting_value(headers_by_payout: Mapping[uuid.UUID, Mapping[str, str]]) -> str | None:
    """The setting for these payouts' trace headers; None when none has any (tracing off)."""
    traced = {str(payout_id): dict(h) for payout_id, h in headers_by_payout.items() if h}
    return orjson.dumps(traced).decode() if traced else None


async def set_current(conn: AsyncConnection, payout_id: uuid.UUID) -> None:
    """For a status change made by further statements in conn's transaction: the current
    trace context for this payout. One statement while tracing is on, none while it is off."""
    value = setting_value({payout_id: context_headers()})
    if value is not None:
        await conn.execute(sa.select(sa.func.set_config(SETTING, value, True)))

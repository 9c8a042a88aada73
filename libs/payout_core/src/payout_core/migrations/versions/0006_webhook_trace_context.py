"""webhook trace context: the fan-out outbox row written by the webhook trigger carries the
trace context of the status change (payout_core.db.status_trace), so the delivery joins the
payout's trace

The status change sets `payouts.trace_context` (transaction-local) only while tracing is on;
unset, the trigger writes the row with no headers, as before.

Revision ID: 0006
Revises: 0005
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0004's trigger function, but for the fan-out row's insert, which now writes its headers.
FAN_OUT_0004 = """
        INSERT INTO outbox (routing_key, payload)
        VALUES ('webhook.event', jsonb_build_object('event_id', event_id));
"""
FAN_OUT_WITH_TRACE_CONTEXT = """
        -- A setting set earlier in the session reads '' once its transaction ended.
        INSERT INTO outbox (routing_key, payload, headers)
        VALUES ('webhook.event', jsonb_build_object('event_id', event_id),
            coalesce(NULLIF(current_setting('payouts.trace_context', true), '')::jsonb
                -> NEW.id::text, '{}'::jsonb));
"""


def _function_of_0004() -> str:
    """0004's CREATE OR REPLACE FUNCTION, from 0004 itself (versions/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "migration_0004", Path(__file__).with_name("0004_webhooks.py")
    )
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    text: str = migration.RECORD_EVENT
    assert FAN_OUT_0004 in text, "0004's trigger function is not the one this replaces"
    return text.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def upgrade() -> None:
    op.execute(_function_of_0004().replace(FAN_OUT_0004, FAN_OUT_WITH_TRACE_CONTEXT))


def downgrade() -> None:
    op.execute(_function_of_0004())

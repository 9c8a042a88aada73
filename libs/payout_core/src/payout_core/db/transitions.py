"""Every statement that writes a payout's status, each with the status change it may make.

A change is declared once (from one status, or from nothing for a new payout, to a set of
statuses), checked against the status machine (payout_core.domain.status) when this module
loads, and the statements' status literals are rendered from it: a statement cannot write a
change the machine forbids (tests/unit/test_transitions.py reads them back out of the SQL).
Each statement writes the payout and its history row together; webhook events follow from
the status change (a trigger, migration 0004).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from payout_core.db import status_trace
from payout_core.db.tables import payout_events, payouts
from payout_core.domain.status import INITIAL, PayoutStatus, can_transition


@dataclass(frozen=True)
class StatusChange:
    """What a statement may write: from from_status (None: the payout is new) to to_statuses."""

    from_status: PayoutStatus | None
    to_statuses: tuple[PayoutStatus, ...]

    def __post_init__(self) -> None:
        for to_status in self.to_statuses:
            if self.from_status is None:
                if to_status is not INITIAL:
                    raise ValueError(f"a new payout is {INITIAL}, not {to_status}")
            elif not can_transition(self.from_status, to_status):
                raise ValueError(f"illegal transition {self.from_status} -> {to_status}")

    @property
    def sql_from(self) -> str:
        return "NULL" if self.from_status is None else sql_literal(self.from_status)

    @property
    def sql_to(self) -> str:
        """The to_statuses as an SQL list, for `IN (...)`."""
        return ", ".join(sql_literal(status) for status in self.to_statuses)


def sql_literal(status: PayoutStatus) -> str:
    return f"'{status.value}'"


CREATE = StatusChange(None, (INITIAL,))
START_PROCESSING = StatusChange(PayoutStatus.PENDING, (PayoutStatus.PROCESSING,))
FINISH_PROCESSING = StatusChange(
    PayoutStatus.PROCESSING, (PayoutStatus.PROCESSED, PayoutStatus.FAILED)
)

# The columns of a new payout that the request does not provide.
NEW_PAYOUT: Mapping[str, Any] = {
    "status": INITIAL.value,
    "failure_code": None,
    "failure_message": None,
    "processed_at": None,
    "version": 1,
}


def create_ctes(*, claimed: bool) -> str:
    """The CTEs `payout` (the new row; its id returned) and `event` (its first history row)
    of a creation statement, which goes on with CTEs of its own reading `payout`. With
    claimed, the row is written only if a CTE `claim` before them returned a row."""
    return f"""
payout AS (
    INSERT INTO payouts (id, client_id, amount, currency, recipient_details, description,
        metadata, status, idempotency_key, request_id, created_at, updated_at, version)
    SELECT :id, :client_id, :amount, :currency, :recipient_details, :description, :metadata,
        {sql_literal(PayoutStatus(NEW_PAYOUT["status"]))}, :idempotency_key, :request_id,
        now(), now(), {int(NEW_PAYOUT["version"])}
    {"FROM claim" if claimed else ""}
    RETURNING id
), event AS (
    INSERT INTO payout_events (payout_id, from_status, to_status, reason, request_id)
    SELECT id, {CREATE.sql_from}, {CREATE.sql_to}, 'created', :request_id FROM payout
)"""


# Set-based, for every payout of a processor's batch in one round trip and one commit.
# Lock the payouts (in id order: two batches never wait on each other in a cycle), move those
# pending and not deleted to processing, and return what processing needs: each payout as
# found (`found` is read and locked before `started` updates the rows), and whether it moved.
# A payout it moves is sent to the provider next: its call's start is marked (transfer_fence).
START = (
    sa.text(f"""
WITH {status_trace.SET_IN_STATEMENT}, input AS (
    SELECT i.* FROM unnest(:ids, :request_ids) AS i(id, request_id)
        LEFT JOIN trace_context ON true
), found AS (
    SELECT p.id, p.status, p.deleted_at, p.amount, p.currency, p.recipient_details,
        p.created_at
    FROM payouts p JOIN input USING (id) ORDER BY p.id FOR UPDATE OF p
), started AS (
    UPDATE payouts SET status = {START_PROCESSING.sql_to}, updated_at = now(),
        version = payouts.version + 1, transfer_started_at = now()  -- the call follows
    FROM found
    WHERE payouts.id = found.id AND payouts.status = {START_PROCESSING.sql_from}
        AND payouts.deleted_at IS NULL
    RETURNING payouts.id
), event AS (
    INSERT INTO payout_events (payout_id, from_status, to_status, reason, request_id)
    SELECT id, {START_PROCESSING.sql_from}, {START_PROCESSING.sql_to}, 'processing_started',
        input.request_id
    FROM started JOIN input USING (id)
)
SELECT found.*, found.id IN (SELECT id FROM started) AS started FROM found
""")
    .bindparams(
        sa.bindparam("ids", type_=ARRAY(sa.Uuid)),
        sa.bindparam("request_ids", type_=ARRAY(sa.Text)),
        sa.bindparam("trace_context", type_=sa.Text),
    )
    .columns(
        sa.column("id", sa.Uuid),
        sa.column("status", sa.Text),
        sa.column("deleted_at", sa.DateTime(timezone=True)),
        sa.column("amount", sa.Numeric(22, 4)),
        sa.column("currency", sa.Text),
        sa.column("recipient_details", JSONB),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("started", sa.Boolean),
    )
)

# processing -> each payout's to_status (one of FINISH_PROCESSING's), for those still
# processing; their created_at.
FINISH = (
    sa.text(f"""
WITH {status_trace.SET_IN_STATEMENT}, input AS (
    SELECT i.* FROM unnest(:ids, :to_statuses, :failure_codes, :failure_messages, :reasons,
        :request_ids) AS i(id, to_status, failure_code, failure_message, reason, request_id)
        LEFT JOIN trace_context ON true
), finished AS (
    UPDATE payouts SET status = input.to_status, failure_code = input.failure_code,
        failure_message = input.failure_message, processed_at = now(), updated_at = now(),
        version = payouts.version + 1
    FROM input
    WHERE payouts.id = input.id AND payouts.status = {FINISH_PROCESSING.sql_from}
        AND input.to_status IN ({FINISH_PROCESSING.sql_to})
    RETURNING payouts.id, payouts.created_at
), event AS (
    INSERT INTO payout_events (payout_id, from_status, to_status, reason, request_id)
    SELECT id, {FINISH_PROCESSING.sql_from}, input.to_status, input.reason, input.request_id
    FROM finished JOIN input USING (id)
)
SELECT id, created_at FROM finished
""")
    .bindparams(
        sa.bindparam("ids", type_=ARRAY(sa.Uuid)),
        *(
            sa.bindparam(name, type_=ARRAY(sa.Text))
            for name in (
                "to_statuses",
                "failure_codes",
                "failure_messages",
                "reasons",
                "request_ids",
            )
        ),
        sa.bindparam("trace_context", type_=sa.Text),
    )
    .columns(sa.column("id", sa.Uuid), sa.column("created_at", sa.DateTime(timezone=True)))
)


async def record_event(
    conn: AsyncConnection,
    payout_id: uuid.UUID,
    from_status: PayoutStatus | None,
    to_status: PayoutStatus,
    reason: str,
    request_id: str | None,
) -> None:
    await conn.execute(
        payout_events.insert().values(
            payout_id=payout_id,
            from_status=None if from_status is None else from_status.value,
            to_status=to_status.value,
            reason=reason,
            request_id=request_id,
        )
    )


async def transition(
    conn: AsyncConnection,
    payout_id: uuid.UUID,
    from_status: PayoutStatus,
    to_status: PayoutStatus,
    *,
    reason: str,
    request_id: str | None = None,
    expected_version: int | None = None,
    guard: sa.ColumnElement[bool] | None = None,
    values: Mapping[str, Any] | None = None,
) -> RowMapping | None:
    """Move one payout, any change the machine allows, if and only if it is still in
    from_status (and at expected_version, and meets guard): a conditional UPDATE, then its
    history row.

    Returns the updated row, or None when another writer got there first.
    """
    if not can_transition(from_status, to_status):
        raise ValueError(f"illegal transition {from_status} -> {to_status}")
    await status_trace.set_current(conn, payout_id)  # for its webhook event (tracing on)
    condition = sa.and_(payouts.c.id == payout_id, payouts.c.status == from_status.value)
    if expected_version is not None:
        condition = sa.and_(condition, payouts.c.version == expected_version)
    if guard is not None:
        condition = sa.and_(condition, guard)
    result = await conn.execute(
        payouts.update()
        .where(condition)
        .values(
            status=to_status.value,
            updated_at=sa.func.now(),
            version=payouts.c.version + 1,
            **(values or {}),
        )
        .returning(*payouts.c)
    )
    row = result.mappings().first()
    if row is not None:
        await record_event(conn, payout_id, from_status, to_status, reason, request_id)
    return row

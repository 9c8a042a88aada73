"""SQL for payouts as the API needs it, always scoped to one client: SQLAlchemy Core, and one
hand-written statement for creation, the hot path."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from payout_api.service.pagination import NEXT, Cursor
from payout_core.db.status_trace import SET_IN_STATEMENT
from payout_core.db.tables import IDEMPOTENCY_KEY_TTL, idempotency_keys, payout_events, payouts

IDEMPOTENCY_TTL = sa.text(f"interval '{IDEMPOTENCY_KEY_TTL}'")


def _visible(client_id: uuid.UUID, payout_id: uuid.UUID) -> sa.ColumnElement[bool]:
    return sa.and_(
        payouts.c.id == payout_id,
        payouts.c.client_id == client_id,
        payouts.c.deleted_at.is_(None),
    )


async def get(
    conn: AsyncConnection, client_id: uuid.UUID, payout_id: uuid.UUID, *, for_update: bool = False
) -> RowMapping | None:
    query = sa.select(payouts).where(_visible(client_id, payout_id))
    if for_update:
        query = query.with_for_update()
    return (await conn.execute(query)).mappings().first()


# A new payout, its first event and its outbox message: one statement, so one round trip and
# one commit. Its timestamps are PostgreSQL's now() (one clock for every replica), returned.
# With an Idempotency-Key the key is claimed first and the rest is written only if
# the claim succeeded (no live record holds the key); a concurrent request holding the same
# key is waited for at most lock_timeout, set for this statement alone.
_CREATED_ROWS = """
payout AS (
    INSERT INTO payouts (id, client_id, amount, currency, recipient_details, description,
        metadata, status, idempotency_key, request_id, created_at, updated_at, version)
    SELECT :id, :client_id, :amount, :currency, :recipient_details, :description, :metadata,
        'pending', :idempotency_key, :request_id, now(), now(), 1
    {claimed}
    RETURNING id
), event AS (
    INSERT INTO payout_events (payout_id, from_status, to_status, reason, request_id)
    SELECT id, NULL, 'pending', 'created', :request_id FROM payout
), message AS (
    INSERT INTO outbox (routing_key, payload, headers)
    SELECT :routing_key, :payload, :headers FROM payout LEFT JOIN trace_context ON true
)
SELECT (SELECT count(*) FROM payout) AS created, now() AS at"""
_CLAIM = """
settings AS (SELECT set_config('lock_timeout', :lock_timeout, true)
), claim AS (
    INSERT INTO idempotency_keys (client_id, key, request_hash, payout_id, response_status,
        response_body, created_at)
    SELECT :client_id, :idempotency_key, :request_hash, :id, :response_status, :response_body,
        now()
    FROM settings
    ON CONFLICT (client_id, key) DO UPDATE SET request_hash = excluded.request_hash,
        payout_id = excluded.payout_id, response_status = excluded.response_status,
        response_body = excluded.response_body, created_at = excluded.created_at
    WHERE idempotency_keys.created_at < now() - {ttl}
    RETURNING 1
),"""
_TYPES = (
    sa.bindparam("id", type_=sa.Uuid),
    sa.bindparam("client_id", type_=sa.Uuid),
    sa.bindparam("amount", type_=sa.Numeric(22, 4)),
    sa.bindparam("recipient_details", type_=JSONB),
    sa.bindparam("metadata", type_=JSONB),
    sa.bindparam("currency", type_=sa.String),
    sa.bindparam("description", type_=sa.Text),
    sa.bindparam("idempotency_key", type_=sa.Text),
    sa.bindparam("request_id", type_=sa.Text),
    sa.bindparam("routing_key", type_=sa.Text),
    sa.bindparam("payload", type_=JSONB),
    sa.bindparam("headers", type_=JSONB),
    sa.bindparam("trace_context", type_=sa.Text),
)
# The trace context for the webhook trigger rides on the statement (status_trace).
_TRACED = "WITH " + SET_IN_STATEMENT + ","
INSERT_CREATED = sa.text(_TRACED + _CREATED_ROWS.format(claimed="")).bindparams(*_TYPES)
INSERT_CREATED_WITH_KEY = sa.text(
    _TRACED + _CLAIM.format(ttl=IDEMPOTENCY_TTL) + _CREATED_ROWS.format(claimed="FROM claim")
).bindparams(
    *_TYPES,
    sa.bindparam("request_hash", type_=sa.Text),
    sa.bindparam("response_status", type_=sa.Integer),
    sa.bindparam("response_body", type_=JSONB),
    sa.bindparam("lock_timeout", type_=sa.Text),
)


async def insert_created(
    conn: AsyncConnection,
    values: Mapping[str, Any],
    *,
    routing_key: str,
    payload: Mapping[str, Any],
    headers: Mapping[str, str],
    trace_context: str | None = None,
    claim: Mapping[str, Any] | None = None,
) -> tuple[bool, datetime]:
    """Write a new payout with its event and outbox message; with a claim (request_hash,
    response_status, response_body, lock_timeout), only if its Idempotency-Key is free.
    trace_context: status_trace.setting_value() for the payout's webhook event.

    Use it on an autocommit connection: the statement is its own transaction. (written, the
    database's now() stored as created_at); written is False when a live idempotency record
    holds the key (nothing was written).
    """
    params = {
        **values,
        "routing_key": routing_key,
        "payload": dict(payload),
        "headers": dict(headers),
        "trace_context": trace_context,
        **(claim or {}),
    }
    statement = INSERT_CREATED if claim is None else INSERT_CREATED_WITH_KEY
    row = (await conn.execute(statement, params)).one()
    return bool(row.created), row.at


async def get_idempotency_record(
    conn: AsyncConnection, client_id: uuid.UUID, key: str
) -> RowMapping | None:
    query = sa.select(idempotency_keys).where(
        idempotency_keys.c.client_id == client_id,
        idempotency_keys.c.key == key,
        idempotency_keys.c.created_at >= sa.func.now() - IDEMPOTENCY_TTL,
    )
    return (await conn.execute(query)).mappings().first()


async def list_page(
    conn: AsyncConnection,
    client_id: uuid.UUID,
    *,
    limit: int,
    cursor: Cursor | None,
    statuses: Sequence[str] = (),
    currency: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    idempotency_key: str | None = None,
) -> tuple[list[RowMapping], bool]:
    """Up to limit rows in display order (newest first) on the cursor's side, and whether
    more rows lie beyond them in the direction of travel."""
    conditions = [payouts.c.client_id == client_id, payouts.c.deleted_at.is_(None)]
    if statuses:
        conditions.append(payouts.c.status.in_(list(statuses)))
    if currency:
        conditions.append(payouts.c.currency == currency)
    if created_after:
        conditions.append(payouts.c.created_at > created_after)
    if created_before:
        conditions.append(payouts.c.created_at < created_before)
    if idempotency_key:
        conditions.append(payouts.c.idempotency_key == idempotency_key)
    position = sa.tuple_(payouts.c.created_at, payouts.c.id)
    newest_first = True
    if cursor is not None:
        mark = sa.tuple_(sa.literal(cursor.created_at), sa.literal(cursor.id))
        if cursor.direction == NEXT:
            conditions.append(position < mark)
        else:
            conditions.append(position > mark)
            newest_first = False
    order = (
        [payouts.c.created_at.desc(), payouts.c.id.desc()]
        if newest_first
        else [payouts.c.created_at.asc(), payouts.c.id.asc()]
    )
    query = sa.select(payouts).where(*conditions).order_by(*order).limit(limit + 1)
    rows = list((await conn.execute(query)).mappings())
    has_more = len(rows) > limit
    page = rows[:limit]
    return (page if newest_first else page[::-1]), has_more


async def update_fields(
    conn: AsyncConnection, payout_id: uuid.UUID, expected_version: int, values: Mapping[str, Any]
) -> RowMapping | None:
    result = await conn.execute(
        payouts.update()
        .where(
            payouts.c.id == payout_id,
            payouts.c.version == expected_version,
            payouts.c.status == "pending",
        )
        .values(**values, updated_at=sa.func.now(), version=payouts.c.version + 1)
        .returning(*payouts.c)
    )
    return result.mappings().first()


async def mark_deleted(conn: AsyncConnection, payout_id: uuid.UUID) -> None:
    await conn.execute(
        payouts.update()
        .where(payouts.c.id == payout_id)
        .values(deleted_at=sa.func.now(), updated_at=sa.func.now(), version=payouts.c.version + 1)
    )


async def events(conn: AsyncConnection, payout_id: uuid.UUID) -> list[RowMapping]:
    query = (
        sa.select(payout_events)
        .where(payout_events.c.payout_id == payout_id)
        .order_by(payout_events.c.id)
    )
    return list((await conn.execute(query)).mappings())

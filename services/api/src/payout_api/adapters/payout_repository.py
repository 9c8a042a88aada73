"""SQL for payouts as the API needs it: SQLAlchemy Core, always scoped to one client."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from payout_api.service.pagination import NEXT, Cursor
from payout_core.db.tables import idempotency_keys, outbox, payout_events, payouts

IDEMPOTENCY_TTL = sa.text("interval '24 hours'")


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


async def insert_payout(conn: AsyncConnection, values: Mapping[str, Any]) -> RowMapping:
    result = await conn.execute(payouts.insert().values(**values).returning(*payouts.c))
    return result.mappings().one()


async def insert_outbox(
    conn: AsyncConnection, routing_key: str, payload: Mapping[str, Any], headers: Mapping[str, str]
) -> int:
    result = await conn.execute(
        outbox.insert()
        .values(routing_key=routing_key, payload=dict(payload), headers=dict(headers))
        .returning(outbox.c.id)
    )
    return int(result.scalar_one())


async def claim_idempotency_key(conn: AsyncConnection, values: Mapping[str, Any]) -> bool:
    """Record the key for this request; False when a live (< 24 h) record already holds it.

    A concurrent transaction holding the same key makes this wait on the unique index until
    that one commits or rolls back (bounded by the transaction's lock_timeout).
    """
    stmt = insert(idempotency_keys).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[idempotency_keys.c.client_id, idempotency_keys.c.key],
        set_={
            c: stmt.excluded[c]
            for c in ("request_hash", "payout_id", "response_status", "response_body", "created_at")
        },
        where=idempotency_keys.c.created_at < sa.func.now() - IDEMPOTENCY_TTL,
    ).returning(idempotency_keys.c.key)
    return (await conn.execute(stmt)).first() is not None


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

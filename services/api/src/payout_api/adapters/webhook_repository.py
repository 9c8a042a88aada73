"""SQL for webhook endpoints, their delivery attempts and the events as the API needs it
(payout_api.service.ports.WebhookStore), always scoped to one client: SQLAlchemy Core. Each
method is one statement, its own transaction; the webhooks are not a hot path."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payout_api.pagination import NEXT, Cursor
from payout_api.service.ports import EventFilter
from payout_core.db.engine import autocommit
from payout_core.db.tables import outbox, webhook_attempts, webhook_endpoints, webhook_events

ep = webhook_endpoints.c
ev = webhook_events.c


async def _page(
    conn: AsyncConnection,
    table: sa.Table,
    conditions: list[Any],
    cursor: Cursor | None,
    limit: int,
) -> tuple[list[RowMapping], bool]:
    """Up to limit rows newest first by (created_at, id) on the cursor's side, and whether
    more lie beyond them in the direction of travel."""
    position = sa.tuple_(table.c.created_at, table.c.id)
    newest_first = cursor is None or cursor.direction == NEXT
    if cursor is not None:
        mark = sa.tuple_(sa.literal(cursor.created_at), sa.literal(cursor.id))
        conditions = [*conditions, position < mark if newest_first else position > mark]
    order = (table.c.created_at, table.c.id)
    query = (
        sa.select(table)
        .where(*conditions)
        .order_by(*(c.desc() if newest_first else c.asc() for c in order))
        .limit(limit + 1)
    )
    rows = list((await conn.execute(query)).mappings())
    more = len(rows) > limit
    return (rows[:limit] if newest_first else rows[:limit][::-1]), more


def _owned(client_id: uuid.UUID, endpoint_id: uuid.UUID) -> sa.ColumnElement[bool]:
    return sa.and_(ep.id == endpoint_id, ep.client_id == client_id)


class SqlWebhookStore:
    """The webhooks in PostgreSQL (payout_api.service.ports.WebhookStore)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _one(self, statement: sa.Executable) -> RowMapping | None:
        """The statement's first row; a change is committed."""
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).mappings().first()

    async def _read(self, statement: sa.Executable) -> list[RowMapping]:
        async with autocommit(self._engine) as conn:
            return list((await conn.execute(statement)).mappings())

    async def insert_endpoint(self, values: Mapping[str, Any]) -> RowMapping:
        row = await self._one(
            webhook_endpoints.insert().values(**values).returning(*webhook_endpoints.c)
        )
        assert row is not None  # an insert returns its row
        return row

    async def get_endpoint(self, client_id: uuid.UUID, endpoint_id: uuid.UUID) -> RowMapping | None:
        rows = await self._read(sa.select(webhook_endpoints).where(_owned(client_id, endpoint_id)))
        return rows[0] if rows else None

    async def list_endpoints(
        self, client_id: uuid.UUID, *, limit: int, cursor: Cursor | None
    ) -> tuple[list[RowMapping], bool]:
        async with autocommit(self._engine) as conn:
            return await _page(conn, webhook_endpoints, [ep.client_id == client_id], cursor, limit)

    async def update_endpoint(
        self, client_id: uuid.UUID, endpoint_id: uuid.UUID, values: Mapping[str, Any]
    ) -> RowMapping | None:
        return await self._one(
            webhook_endpoints.update()
            .where(_owned(client_id, endpoint_id))
            .values(**values, updated_at=sa.func.now())
            .returning(*webhook_endpoints.c)
        )

    async def replace_secret(
        self, client_id: uuid.UUID, endpoint_id: uuid.UUID, sealed: str, *, overlap: timedelta
    ) -> RowMapping | None:
        return await self.update_endpoint(
            client_id,
            endpoint_id,
            {
                "secret": sealed,
                "previous_secret": ep.secret,
                "previous_secret_expires_at": sa.func.now() + overlap,
            },
        )

    async def delete_endpoint(self, client_id: uuid.UUID, endpoint_id: uuid.UUID) -> bool:
        deleted = await self._one(
            webhook_endpoints.delete().where(_owned(client_id, endpoint_id)).returning(ep.id)
        )
        return deleted is not None

    async def list_attempts(self, endpoint_id: uuid.UUID, limit: int) -> list[RowMapping]:
        return await self._read(
            sa.select(webhook_attempts)
            .where(webhook_attempts.c.endpoint_id == endpoint_id)
            .order_by(webhook_attempts.c.id.desc())
            .limit(limit)
        )

    async def list_events(
        self, client_id: uuid.UUID, only: EventFilter, *, limit: int, cursor: Cursor | None
    ) -> tuple[list[RowMapping], bool]:
        conditions: list[Any] = [ev.client_id == client_id]
        if only.types:
            conditions.append(ev.type.in_(list(only.types)))
        if only.payout_id is not None:
            conditions.append(ev.payout_id == only.payout_id)
        if only.created_after is not None:
            conditions.append(ev.created_at > only.created_after)
        if only.created_before is not None:
            conditions.append(ev.created_at < only.created_before)
        async with autocommit(self._engine) as conn:
            return await _page(conn, webhook_events, conditions, cursor, limit)

    async def get_event(self, client_id: uuid.UUID, event_id: uuid.UUID) -> RowMapping | None:
        rows = await self._read(
            sa.select(webhook_events).where(ev.id == event_id, ev.client_id == client_id)
        )
        return rows[0] if rows else None

    async def add_to_outbox(self, routing_key: str, payload: Mapping[str, Any]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(outbox.insert().values(routing_key=routing_key, payload=payload))

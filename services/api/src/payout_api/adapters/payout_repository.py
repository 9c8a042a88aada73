"""SQL for payouts as the API needs it, always scoped to one client: SQLAlchemy Core, and one
hand-written statement for creation, the hot path."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payout_api.pagination import NEXT, Cursor
from payout_api.service.errors import IdempotencyKeyInUse
from payout_core.db import status_trace
from payout_core.db.engine import autocommit
from payout_core.db.errors import LOCK_NOT_AVAILABLE_SQLSTATE, sqlstate_of
from payout_core.db.tables import IDEMPOTENCY_KEY_TTL, idempotency_keys, payout_events, payouts
from payout_core.db.transitions import create_ctes, transition
from payout_core.db.uow import UnitOfWork
from payout_core.domain.status import PayoutStatus
from payout_core.tracing import context_headers

IDEMPOTENCY_TTL = sa.text(f"interval '{IDEMPOTENCY_KEY_TTL}'")
# How long a request waits for a concurrent one holding the same Idempotency-Key.
IDEMPOTENCY_LOCK_TIMEOUT = "5s"
# The status the record keeps beside the body: a payout's creation is always answered 201.
CREATED_STATUS = 201


def _visible(client_id: uuid.UUID, payout_id: uuid.UUID) -> sa.ColumnElement[bool]:
    return sa.and_(
        payouts.c.id == payout_id,
        payouts.c.client_id == client_id,
        payouts.c.deleted_at.is_(None),
    )


# A new payout and its first event (payout_core.db.transitions), and its outbox message: one
# statement, so one round trip and one commit. Its timestamps are PostgreSQL's now() (one
# clock for every replica), returned. With an Idempotency-Key the key is claimed first and
# the rest is written only if the claim succeeded (no live record holds the key); a concurrent
# request holding the same key is waited for at most lock_timeout, set for this statement alone.
_OUTBOX_MESSAGE = """, message AS (
    INSERT INTO outbox (message_id, routing_key, payload, headers)
    SELECT id::text, :routing_key, :payload, :headers FROM payout LEFT JOIN trace_context ON true
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
_TRACED = "WITH " + status_trace.SET_IN_STATEMENT + ","
INSERT_CREATED = sa.text(_TRACED + create_ctes(claimed=False) + _OUTBOX_MESSAGE).bindparams(*_TYPES)
INSERT_CREATED_WITH_KEY = sa.text(
    _TRACED + _CLAIM.format(ttl=IDEMPOTENCY_TTL) + create_ctes(claimed=True) + _OUTBOX_MESSAGE
).bindparams(
    *_TYPES,
    sa.bindparam("request_hash", type_=sa.Text),
    sa.bindparam("response_status", type_=sa.Integer),
    sa.bindparam("response_body", type_=JSONB),
    sa.bindparam("lock_timeout", type_=sa.Text),
)


class PayoutRepository:
    """The statements, on one connection (see SqlPayoutStore)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(
        self, client_id: uuid.UUID, payout_id: uuid.UUID, *, for_update: bool = False
    ) -> RowMapping | None:
        query = sa.select(payouts).where(_visible(client_id, payout_id))
        if for_update:
            query = query.with_for_update()
        return (await self._conn.execute(query)).mappings().first()

    async def insert_created(
        self,
        values: Mapping[str, Any],
        *,
        routing_key: str,
        payload: Mapping[str, Any],
        headers: Mapping[str, str],
        claim: Mapping[str, Any] | None = None,
    ) -> tuple[bool, datetime]:
        """Write a new payout with its event and outbox message; with a claim (request_hash and
        response_body, the payout as answered), only if its Idempotency-Key is free.

        Use it on an autocommit connection: the statement is its own transaction. (written, the
        database's now() stored as created_at); written is False when a live idempotency record
        holds the key (nothing was written). IdempotencyKeyInUse: a concurrent request holds it.
        """
        params = {
            **values,
            "routing_key": routing_key,
            "payload": dict(payload),
            "headers": dict(headers),
            # The webhook trigger writes the created event in the request's trace.
            "trace_context": status_trace.setting_value({values["id"]: context_headers()}),
        }
        statement = INSERT_CREATED
        if claim is not None:
            statement = INSERT_CREATED_WITH_KEY
            params.update(
                claim, response_status=CREATED_STATUS, lock_timeout=IDEMPOTENCY_LOCK_TIMEOUT
            )
        try:
            row = (await self._conn.execute(statement, params)).one()
        except DBAPIError as exc:
            if sqlstate_of(exc) == LOCK_NOT_AVAILABLE_SQLSTATE:
                raise IdempotencyKeyInUse() from None
            raise
        return bool(row.created), row.at

    async def get_idempotency_record(self, client_id: uuid.UUID, key: str) -> RowMapping | None:
        query = sa.select(idempotency_keys).where(
            idempotency_keys.c.client_id == client_id,
            idempotency_keys.c.key == key,
            idempotency_keys.c.created_at >= sa.func.now() - IDEMPOTENCY_TTL,
        )
        return (await self._conn.execute(query)).mappings().first()

    async def list_page(
        self,
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
        rows = list((await self._conn.execute(query)).mappings())
        has_more = len(rows) > limit
        page = rows[:limit]
        return (page if newest_first else page[::-1]), has_more

    async def update_fields(
        self, payout_id: uuid.UUID, expected_version: int, values: Mapping[str, Any]
    ) -> RowMapping | None:
        result = await self._conn.execute(
            payouts.update()
            .where(
                payouts.c.id == payout_id,
                payouts.c.version == expected_version,
                payouts.c.status == PayoutStatus.PENDING.value,
            )
            .values(**values, updated_at=sa.func.now(), version=payouts.c.version + 1)
            .returning(*payouts.c)
        )
        return result.mappings().first()

    async def mark_deleted(self, payout_id: uuid.UUID) -> None:
        await self._conn.execute(
            payouts.update()
            .where(payouts.c.id == payout_id)
            .values(
                deleted_at=sa.func.now(), updated_at=sa.func.now(), version=payouts.c.version + 1
            )
        )

    async def events(self, payout_id: uuid.UUID) -> list[RowMapping]:
        query = (
            sa.select(payout_events)
            .where(payout_events.c.payout_id == payout_id)
            .order_by(payout_events.c.id)
        )
        return list((await self._conn.execute(query)).mappings())

    async def change_status(
        self,
        payout_id: uuid.UUID,
        current: PayoutStatus,
        requested: PayoutStatus,
        *,
        reason: str,
        request_id: str | None,
    ) -> RowMapping | None:
        return await transition(
            self._conn, payout_id, current, requested, reason=reason, request_id=request_id
        )


class _TransactionRepository(PayoutRepository):
    def __init__(self, uow: UnitOfWork) -> None:
        super().__init__(uow.conn)
        self._uow = uow

    async def commit(self) -> None:
        await self._uow.commit()


class SqlPayoutStore:
    """The payouts in PostgreSQL (payout_api.service.ports.PayoutStore)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[PayoutRepository]:
        async with autocommit(self._engine) as conn:
            yield PayoutRepository(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_TransactionRepository]:
        async with UnitOfWork(self._engine) as uow:
            yield _TransactionRepository(uow)

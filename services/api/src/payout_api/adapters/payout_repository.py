"""SQL for payouts as the API needs it, always scoped to one client: SQLAlchemy Core, and one
hand-written statement for creation. The statements outside a transaction block (creation,
reads: the hot paths) are compiled once and run on the driver's connection (DriverStatement);
the changes, in a transaction, through SQLAlchemy."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_api.pagination import NEXT, Cursor
from payout_api.service.errors import IdempotencyKeyInUse
from payout_api.service.ports import Row
from payout_core.db import status_trace
from payout_core.db.engine import DriverConnection, DriverStatement, driver_connection
from payout_core.db.errors import LOCK_NOT_AVAILABLE_SQLSTATE, sqlstate_of
from payout_core.db.tables import (
    IDEMPOTENCY_KEY_TTL,
    TS,
    idempotency_keys,
    payout_events,
    payouts,
)
from payout_core.db.transitions import create_ctes, transition
from payout_core.db.uow import UnitOfWork
from payout_core.domain.status import PayoutStatus
from payout_core.tracing import context_headers

IDEMPOTENCY_TTL = sa.text(f"interval '{IDEMPOTENCY_KEY_TTL}'")
# How long a request waits for a concurrent one holding the same Idempotency-Key.
IDEMPOTENCY_LOCK_TIMEOUT = "5s"
# The status the record keeps beside the body: a payout's creation is always answered 201.
CREATED_STATUS = 201


def _visible(client_id: object, payout_id: object) -> sa.ColumnElement[bool]:
    return sa.and_(
        payouts.c.id == payout_id,
        payouts.c.client_id == client_id,
        payouts.c.deleted_at.is_(None),
    )


_CLIENT_ID = sa.bindparam("client_id", type_=sa.Uuid)
GET_VISIBLE = DriverStatement(
    sa.select(payouts).where(_visible(_CLIENT_ID, sa.bindparam("id", type_=sa.Uuid)))
)
GET_IDEMPOTENCY_RECORD = DriverStatement(
    sa.select(idempotency_keys).where(
        idempotency_keys.c.client_id == _CLIENT_ID,
        idempotency_keys.c.key == sa.bindparam("key", type_=sa.Text),
        idempotency_keys.c.created_at >= sa.func.now() - IDEMPOTENCY_TTL,
    )
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
_INSERT_CREATED = DriverStatement(INSERT_CREATED)
_INSERT_CREATED_WITH_KEY = DriverStatement(INSERT_CREATED_WITH_KEY)


EVENTS = DriverStatement(
    sa.select(payout_events)
    .where(payout_events.c.payout_id == sa.bindparam("payout_id", type_=sa.Uuid))
    .order_by(payout_events.c.id)
)
_LIST_FILTERS = {
    "statuses": payouts.c.status == sa.any_(sa.bindparam("statuses", type_=ARRAY(sa.Text))),
    "currency": payouts.c.currency == sa.bindparam("currency", type_=sa.String),
    "created_after": payouts.c.created_at > sa.bindparam("created_after", type_=TS),
    "created_before": payouts.c.created_at < sa.bindparam("created_before", type_=TS),
    "idempotency_key": payouts.c.idempotency_key == sa.bindparam("idempotency_key", type_=sa.Text),
}
_POSITION = sa.tuple_(payouts.c.created_at, payouts.c.id)
_MARK = sa.tuple_(sa.bindparam("mark_at", type_=TS), sa.bindparam("mark_id", type_=sa.Uuid))
# A list statement for each combination of filters and direction, compiled at first use.
_list_statements: dict[tuple[frozenset[str], str | None], DriverStatement] = {}


def _list_statement(filters: frozenset[str], direction: str | None) -> DriverStatement:
    """Rows in display order (newest first) or, going back from a cursor, oldest first."""
    found = _list_statements.get((filters, direction))
    if found is not None:
        return found
    conditions = [payouts.c.client_id == _CLIENT_ID, payouts.c.deleted_at.is_(None)]
    conditions += [_LIST_FILTERS[name] for name in sorted(filters)]
    order = [payouts.c.created_at.desc(), payouts.c.id.desc()]
    if direction == NEXT:
        conditions.append(_POSITION < _MARK)
    elif direction is not None:
        conditions.append(_POSITION > _MARK)
        order = [payouts.c.created_at.asc(), payouts.c.id.asc()]
    query = (
        sa.select(payouts)
        .where(*conditions)
        .order_by(*order)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )
    statement = _list_statements[(filters, direction)] = DriverStatement(query)
    return statement


class PayoutRepository:
    """The statements outside a transaction block, on one connection (see SqlPayoutStore)."""

    def __init__(self, driver: DriverConnection) -> None:
        self._driver = driver

    async def get(
        self, client_id: uuid.UUID, payout_id: uuid.UUID, *, for_update: bool = False
    ) -> Row | None:
        assert not for_update, "a row is locked in a transaction (_TransactionRepository)"
        row: Row | None = await self._driver.fetchrow(
            GET_VISIBLE, {"client_id": client_id, "id": payout_id}
        )
        return row

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
        statement = _INSERT_CREATED
        if claim is not None:
            statement = _INSERT_CREATED_WITH_KEY
            params.update(
                claim, response_status=CREATED_STATUS, lock_timeout=IDEMPOTENCY_LOCK_TIMEOUT
            )
        try:
            row = await self._driver.fetchrow(statement, params)
        except DBAPIError as exc:
            if sqlstate_of(exc) == LOCK_NOT_AVAILABLE_SQLSTATE:
                raise IdempotencyKeyInUse() from None
            raise
        return bool(row["created"]), row["at"]

    async def get_idempotency_record(self, client_id: uuid.UUID, key: str) -> Row | None:
        row: Row | None = await self._driver.fetchrow(
            GET_IDEMPOTENCY_RECORD, {"client_id": client_id, "key": key}
        )
        return row

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
    ) -> tuple[list[Row], bool]:
        """Up to limit rows in display order (newest first) on the cursor's side, and whether
        more rows lie beyond them in the direction of travel."""
        filters = {
            "statuses": list(statuses),
            "currency": currency,
            "created_after": created_after,
            "created_before": created_before,
            "idempotency_key": idempotency_key,
        }
        values: dict[str, Any] = {k: v for k, v in filters.items() if v}
        present = frozenset(values)
        values.update(client_id=client_id, limit=limit + 1)
        direction = None
        if cursor is not None:
            direction = cursor.direction
            values.update(mark_at=cursor.created_at, mark_id=cursor.id)
        statement = _list_statement(present, direction)
        rows: list[Row] = await self._driver.fetch(statement, values)
        has_more = len(rows) > limit
        page = rows[:limit]
        return (page if direction in (None, NEXT) else page[::-1]), has_more

    async def events(self, payout_id: uuid.UUID) -> list[Row]:
        rows: list[Row] = await self._driver.fetch(EVENTS, {"payout_id": payout_id})
        return rows


class _TransactionRepository:
    """The statements of a change, in one transaction (UnitOfWork)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._conn = uow.conn
        self._uow = uow

    async def get(
        self, client_id: uuid.UUID, payout_id: uuid.UUID, *, for_update: bool = False
    ) -> RowMapping | None:
        query = sa.select(payouts).where(_visible(client_id, payout_id))
        if for_update:
            query = query.with_for_update()
        return (await self._conn.execute(query)).mappings().first()

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

    async def commit(self) -> None:
        await self._uow.commit()


class SqlPayoutStore:
    """The payouts in PostgreSQL (payout_api.service.ports.PayoutStore)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[PayoutRepository]:
        async with driver_connection(self._engine) as driver:
            yield PayoutRepository(driver)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_TransactionRepository]:
        async with UnitOfWork(self._engine) as uow:
            yield _TransactionRepository(uow)

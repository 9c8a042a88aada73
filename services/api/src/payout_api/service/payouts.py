"""Use cases of the payout API. Handlers parse HTTP; this module decides and writes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from marshmallow import ValidationError
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_api.adapters import payout_repository as repo
from payout_api.problems import Problem
from payout_api.representation import dumps, event_json, payout_json
from payout_api.service.pagination import NEXT, PREVIOUS, Cursor
from payout_core.db import status_trace
from payout_core.db.engine import autocommit
from payout_core.db.transitions import transition
from payout_core.db.uow import UnitOfWork
from payout_core.domain.money import format_amount
from payout_core.domain.status import IllegalTransition, PayoutStatus, check_client_transition
from payout_core.messaging.contracts import HEADER_REQUEST_ID, ROUTING_KEY_CREATED, PayoutCreated
from payout_core.metrics import ApiMetrics
from payout_core.schemas import check_amount_for_currency, flatten_errors
from payout_core.tracing import context_headers

# How long a request waits for a concurrent one holding the same Idempotency-Key.
IDEMPOTENCY_LOCK_TIMEOUT = "5s"
LOCK_NOT_AVAILABLE = "55P03"
# The columns of a new payout that the request does not provide.
NEW_PAYOUT = {
    "status": PayoutStatus.PENDING.value,
    "failure_code": None,
    "failure_message": None,
    "processed_at": None,
    "version": 1,
}


@dataclass
class Created:
    status: int
    body: dict[str, Any]
    replayed: bool
    payout_id: uuid.UUID


@dataclass
class Page:
    rows: list[RowMapping]
    next: Cursor | None
    previous: Cursor | None
    extra: dict[str, Any] = field(default_factory=dict)


def etag(version: int) -> str:
    return f'"{version}"'


def _check_if_match(if_match: str | None, version: int) -> None:
    if if_match is None:
        return
    tags = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if "*" not in tags and etag(version) not in tags:
        raise Problem(
            412,
            "precondition-failed",
            f"If-Match does not match the current version {etag(version)}.",
        )


def _not_found(payout_id: uuid.UUID) -> Problem:
    return Problem(404, "not-found", f"No payout {payout_id}.")


def system_clock() -> datetime:
    return datetime.now(UTC)


def _with_timestamps(body: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The response body with created_at/updated_at as stored (the database's clock)."""
    stamped = orjson.loads(dumps({"created_at": at, "updated_at": at}))
    return {**body, **stamped}


async def create_payout(
    engine: AsyncEngine,
    metrics: ApiMetrics,
    client_id: uuid.UUID,
    data: dict[str, Any],
    *,
    idempotency_key: str | None,
    request_hash: str,
    request_id: str,
    clock: Callable[[], datetime] = system_clock,
) -> Created:
    """created_at and updated_at are PostgreSQL's: a replica with a skewed clock changes no
    compared timestamp. `clock` only dates the message (informational, never compared)."""
    payout_id = uuid.uuid4()
    values = {
        "id": payout_id,
        "client_id": client_id,
        "amount": data["amount"],
        "currency": data["currency"],
        "recipient_details": data["recipient_details"],
        "description": data["description"],
        "metadata": data["metadata"],
        "idempotency_key": idempotency_key,
        "request_id": request_id,
    }
    # The row as it will be stored, but for its timestamps (the database sets them): the
    # response, and the body replayed for this key (stamped from the record when replayed).
    unstamped = {**values, **NEW_PAYOUT, "created_at": None, "updated_at": None}
    body = orjson.loads(dumps(payout_json(unstamped)))
    trace_headers = context_headers()
    claim = None
    if idempotency_key is not None:
        claim = {
            "request_hash": request_hash,
            "response_status": 201,
            "response_body": body,
            "lock_timeout": IDEMPOTENCY_LOCK_TIMEOUT,
        }
    try:
        async with autocommit(engine) as conn:
            written, created_at = await repo.insert_created(
                conn,
                values,
                routing_key=ROUTING_KEY_CREATED,
                payload=PayoutCreated(payout_id=payout_id, created_at=clock()).to_payload(),
                # The request's trace context too: the relay publishes the message in it,
                # and the webhook trigger its event's.
                headers={HEADER_REQUEST_ID: request_id, **trace_headers},
                trace_context=status_trace.setting_value({payout_id: trace_headers}),
                claim=claim,
            )
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise Problem(
                409,
                "idempotency-key-in-use",
                "Another request with this Idempotency-Key is still in progress; retry shortly.",
                headers={"Retry-After": "1"},
            ) from None
        raise
    if not written:
        assert idempotency_key is not None  # only a held key stops the insert
        return await _replay(engine, client_id, idempotency_key, request_hash)
    metrics.created.labels(currency=data["currency"]).inc()
    metrics.transitions.labels(**{"from": "none", "to": "pending"}).inc()
    return Created(201, _with_timestamps(body, created_at), replayed=False, payout_id=payout_id)


async def _replay(
    engine: AsyncEngine, client_id: uuid.UUID, key: str, request_hash: str
) -> Created:
    async with autocommit(engine) as conn:
        record = await repo.get_idempotency_record(conn, client_id, key)
    if record is None:  # pragma: no cover - expired between the two statements
        raise Problem(
            409, "idempotency-key-in-use", "Retry the request.", headers={"Retry-After": "1"}
        )
    if record["request_hash"] != request_hash:
        raise Problem(
            422,
            "idempotency-key-reused",
            "This Idempotency-Key was used with a different request body in the "
            "last 24 hours; use a new key for a new payout.",
        )
    return Created(
        record["response_status"],
        _with_timestamps(record["response_body"], record["created_at"]),
        replayed=True,
        payout_id=record["payout_id"],
    )


async def get_payout(engine: AsyncEngine, client_id: uuid.UUID, payout_id: uuid.UUID) -> RowMapping:
    async with autocommit(engine) as conn:
        row = await repo.get(conn, client_id, payout_id)
    if row is None:
        raise _not_found(payout_id)
    return row


async def list_payouts(engine: AsyncEngine, client_id: uuid.UUID, query: dict[str, Any]) -> Page:
    cursor: Cursor | None = query.get("cursor")
    limit = query["limit"]
    async with autocommit(engine) as conn:
        rows, has_more = await repo.list_page(
            conn,
            client_id,
            limit=limit,
            cursor=cursor,
            statuses=query.get("status", ()),
            currency=query.get("currency"),
            created_after=query.get("created_after"),
            created_before=query.get("created_before"),
            idempotency_key=query.get("idempotency_key"),
        )
    going_back = cursor is not None and cursor.direction == PREVIOUS
    more_older = has_more if not going_back else True
    more_newer = (cursor is not None) if not going_back else has_more
    first, last = (rows[0], rows[-1]) if rows else (None, None)
    next_cursor = (
        Cursor(NEXT, last["created_at"], last["id"]) if last is not None and more_older else None
    )
    prev_cursor = (
        Cursor(PREVIOUS, first["created_at"], first["id"])
        if first is not None and more_newer
        else None
    )
    return Page(rows=rows, next=next_cursor, previous=prev_cursor)


async def _lock_for_change(
    uow: UnitOfWork, client_id: uuid.UUID, payout_id: uuid.UUID, if_match: str | None
) -> RowMapping:
    """The client's payout, locked for this transaction, if If-Match (when sent) matches."""
    row = await repo.get(uow.conn, client_id, payout_id, for_update=True)
    if row is None:
        raise _not_found(payout_id)
    _check_if_match(if_match, row["version"])
    return row


async def update_payout(
    engine: AsyncEngine,
    metrics: ApiMetrics,
    client_id: uuid.UUID,
    payout_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    if_match: str | None,
    request_id: str,
) -> RowMapping:
    async with UnitOfWork(engine) as uow:
        row = await _lock_for_change(uow, client_id, payout_id, if_match)
        current = PayoutStatus(row["status"])
        if "status" in changes:
            requested = PayoutStatus(changes["status"])
            try:
                check_client_transition(current, requested)
            except IllegalTransition as exc:
                raise Problem(
                    409, "invalid-transition", f"{exc} Only a pending payout can be cancelled."
                ) from None
            updated = await transition(
                uow.conn,
                payout_id,
                current,
                requested,
                reason="cancelled_by_client",
                request_id=request_id,
            )
            assert updated is not None  # the row is locked
            await uow.commit()
            metrics.transitions.labels(**{"from": current.value, "to": requested.value}).inc()
            return updated
        if current is not PayoutStatus.PENDING:
            raise Problem(
                409,
                "invalid-transition",
                f"A {current} payout cannot be changed; only pending payouts can.",
            )
        if not changes:
            return row
        # The stored amount has the column's scale; compare it as the client wrote it.
        stored_amount = Decimal(format_amount(row["amount"], row["currency"]))
        merged = {"amount": stored_amount, "currency": row["currency"], **changes}
        try:
            check_amount_for_currency(merged)
        except ValidationError as exc:
            raise Problem(
                422,
                "validation-error",
                "The payout is not valid with these changes.",
                errors=flatten_errors(exc.messages),
            ) from None
        updated = await repo.update_fields(uow.conn, payout_id, row["version"], changes)
        assert updated is not None  # the row is locked
        await uow.commit()
        return updated


async def delete_payout(
    engine: AsyncEngine,
    metrics: ApiMetrics,
    client_id: uuid.UUID,
    payout_id: uuid.UUID,
    *,
    if_match: str | None,
    request_id: str,
) -> None:
    async with UnitOfWork(engine) as uow:
        row = await _lock_for_change(uow, client_id, payout_id, if_match)
        current = PayoutStatus(row["status"])
        if current is PayoutStatus.PENDING:
            await transition(
                uow.conn,
                payout_id,
                current,
                PayoutStatus.CANCELLED,
                reason="deleted_by_client",
                request_id=request_id,
            )
        elif current is not PayoutStatus.CANCELLED:
            raise Problem(
                409,
                "invalid-transition",
                f"A {current} payout cannot be deleted; only pending or cancelled ones.",
            )
        await repo.mark_deleted(uow.conn, payout_id)
        await uow.commit()
    if current is PayoutStatus.PENDING:
        metrics.transitions.labels(**{"from": "pending", "to": "cancelled"}).inc()


async def payout_events(
    engine: AsyncEngine, client_id: uuid.UUID, payout_id: uuid.UUID
) -> list[dict[str, Any]]:
    async with autocommit(engine) as conn:
        if await repo.get(conn, client_id, payout_id) is None:
            raise _not_found(payout_id)
        return [event_json(r) for r in await repo.events(conn, payout_id)]

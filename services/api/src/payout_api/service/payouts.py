"""Use cases of the payout API, one object built once per process (payout_api.app): handlers
parse HTTP and render; this module decides and writes through a PayoutStore
(payout_api.service.ports), and says what it refuses with the errors of
payout_api.service.errors."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from payout_api.pagination import Cursor, cursors_around
from payout_api.service.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidChange,
    InvalidPayout,
    PayoutNotFound,
    VersionMismatch,
)
from payout_api.service.ports import PayoutsInTransaction, PayoutStore, Row
from payout_core.db.transitions import NEW_PAYOUT
from payout_core.domain.money import MoneyError, check_amount, format_amount
from payout_core.domain.status import IllegalTransition, PayoutStatus, check_client_transition
from payout_core.messaging.contracts import HEADER_REQUEST_ID, ROUTING_KEY_CREATED, PayoutCreated
from payout_core.metrics import ApiMetrics
from payout_core.representation import payout_json
from payout_core.tracing import context_headers


@dataclass
class Created:
    """The payout as created (as payout_json renders it), the first time or replayed."""

    payout: dict[str, Any]
    replayed: bool
    payout_id: uuid.UUID


@dataclass(frozen=True)
class IdempotentRequest:
    """A creation sent with an Idempotency-Key: the key, and the hash of what was asked (a
    replay must ask the same)."""

    key: str
    request_hash: str


@dataclass
class Page:
    rows: Sequence[Row]
    next: Cursor | None
    previous: Cursor | None


def _check_version(accepted: Collection[int] | None, version: int) -> None:
    """`accepted`: the versions the client may change (None: any)."""
    if accepted is not None and version not in accepted:
        raise VersionMismatch(version)


def system_clock() -> datetime:
    return datetime.now(UTC)


def _with_timestamps(payout: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The payout with created_at/updated_at as stored (the database's clock)."""
    return {**payout, "created_at": at, "updated_at": at}


class PayoutUseCases:
    """`wake_relay` is called after a commit that wrote an outbox message: it is published
    at once, not at the relay's next poll. `clock` only dates messages (informational, never
    compared): created_at and updated_at are the database's."""

    def __init__(
        self,
        store: PayoutStore,
        metrics: ApiMetrics,
        wake_relay: Callable[[], None],
        clock: Callable[[], datetime] = system_clock,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._wake_relay = wake_relay
        self._clock = clock

    def _count_transition(self, from_status: str, to_status: str) -> None:
        self._metrics.transitions.labels(**{"from": from_status, "to": to_status}).inc()

    async def create(
        self,
        client_id: uuid.UUID,
        data: dict[str, Any],
        *,
        idempotency: IdempotentRequest | None,
        request_id: str,
    ) -> Created:
        """A new payout, or with a used idempotency key the one it created (IdempotencyKeyReused
        when its request differed)."""
        payout_id = uuid.uuid4()
        values = {
            "id": payout_id,
            "client_id": client_id,
            "amount": data["amount"],
            "currency": data["currency"],
            "recipient_details": data["recipient_details"],
            "description": data["description"],
            "metadata": data["metadata"],
            "idempotency_key": idempotency.key if idempotency is not None else None,
            "request_id": request_id,
        }
        # The payout as it will be stored, but for its timestamps (the database sets them):
        # what is answered, and kept to answer a replay of this key (stamped from the record).
        unstamped = payout_json({**values, **NEW_PAYOUT, "created_at": None, "updated_at": None})
        claim = None
        if idempotency is not None:
            claim = {"request_hash": idempotency.request_hash, "response_body": unstamped}
        async with self._store.reading() as payouts:
            written, created_at = await payouts.insert_created(
                values,
                routing_key=ROUTING_KEY_CREATED,
                payload=PayoutCreated(payout_id=payout_id, created_at=self._clock()).to_payload(),
                # The request's trace context too: the relay publishes the message in it.
                headers={HEADER_REQUEST_ID: request_id, **context_headers()},
                claim=claim,
            )
        if not written:
            assert idempotency is not None  # only a held key stops the insert
            return await self._replay(client_id, idempotency)
        self._wake_relay()
        self._metrics.created.labels(currency=data["currency"]).inc()
        self._count_transition("none", "pending")
        return Created(_with_timestamps(unstamped, created_at), replayed=False, payout_id=payout_id)

    async def _replay(self, client_id: uuid.UUID, idempotency: IdempotentRequest) -> Created:
        async with self._store.reading() as payouts:
            record = await payouts.get_idempotency_record(client_id, idempotency.key)
        if record is None:  # pragma: no cover - expired between the two statements
            raise IdempotencyKeyInUse("Retry the request.")
        if record["request_hash"] != idempotency.request_hash:
            raise IdempotencyKeyReused()
        return Created(
            _with_timestamps(record["response_body"], record["created_at"]),
            replayed=True,
            payout_id=record["payout_id"],
        )

    async def get(self, client_id: uuid.UUID, payout_id: uuid.UUID) -> Row:
        async with self._store.reading() as payouts:
            row = await payouts.get(client_id, payout_id)
        if row is None:
            raise PayoutNotFound(payout_id)
        return row

    async def list(self, client_id: uuid.UUID, query: dict[str, Any]) -> Page:
        cursor: Cursor | None = query.get("cursor")
        limit = query["limit"]
        async with self._store.reading() as payouts:
            rows, has_more = await payouts.list_page(
                client_id,
                limit=limit,
                cursor=cursor,
                statuses=query.get("status", ()),
                currency=query.get("currency"),
                created_after=query.get("created_after"),
                created_before=query.get("created_before"),
                idempotency_key=query.get("idempotency_key"),
            )
        next_cursor, prev_cursor = cursors_around(rows, cursor, has_more)
        return Page(rows=rows, next=next_cursor, previous=prev_cursor)

    @staticmethod
    async def _lock_for_change(
        payouts: PayoutsInTransaction,
        client_id: uuid.UUID,
        payout_id: uuid.UUID,
        accepted_versions: Collection[int] | None,
    ) -> Row:
        """The client's payout, locked for this transaction, if its version is one accepted."""
        row = await payouts.get(client_id, payout_id, for_update=True)
        if row is None:
            raise PayoutNotFound(payout_id)
        _check_version(accepted_versions, row["version"])
        return row

    async def update(
        self,
        client_id: uuid.UUID,
        payout_id: uuid.UUID,
        changes: dict[str, Any],
        *,
        accepted_versions: Collection[int] | None,
        request_id: str,
    ) -> Row:
        """Cancel (a status change), or change the fields of a pending payout."""
        async with self._store.transaction() as payouts:
            row = await self._lock_for_change(payouts, client_id, payout_id, accepted_versions)
            current = PayoutStatus(row["status"])
            if "status" in changes:
                requested = PayoutStatus(changes["status"])
                try:
                    check_client_transition(current, requested)
                except IllegalTransition as exc:
                    raise InvalidChange(f"{exc} Only a pending payout can be cancelled.") from None
                updated = await payouts.change_status(
                    payout_id,
                    current,
                    requested,
                    reason="cancelled_by_client",
                    request_id=request_id,
                )
                assert updated is not None  # the row is locked
                await payouts.commit()
                self._count_transition(current.value, requested.value)
                return updated
            if current is not PayoutStatus.PENDING:
                raise InvalidChange(
                    f"A {current} payout cannot be changed; only pending payouts can."
                )
            if not changes:
                return row
            # The stored amount has the column's scale; compare it as the client wrote it.
            stored_amount = Decimal(format_amount(row["amount"], row["currency"]))
            merged = {"amount": stored_amount, "currency": row["currency"], **changes}
            try:
                check_amount(merged["amount"], merged["currency"])
            except MoneyError as exc:
                raise InvalidPayout({"amount": [str(exc)]}) from None
            updated = await payouts.update_fields(payout_id, row["version"], changes)
            assert updated is not None  # the row is locked
            await payouts.commit()
            return updated

    async def delete(
        self,
        client_id: uuid.UUID,
        payout_id: uuid.UUID,
        *,
        accepted_versions: Collection[int] | None,
        request_id: str,
    ) -> None:
        """Hide a pending (cancelled first) or cancelled payout."""
        async with self._store.transaction() as payouts:
            row = await self._lock_for_change(payouts, client_id, payout_id, accepted_versions)
            current = PayoutStatus(row["status"])
            if current is PayoutStatus.PENDING:
                await payouts.change_status(
                    payout_id,
                    current,
                    PayoutStatus.CANCELLED,
                    reason="deleted_by_client",
                    request_id=request_id,
                )
            elif current is not PayoutStatus.CANCELLED:
                raise InvalidChange(
                    f"A {current} payout cannot be deleted; only pending or cancelled ones."
                )
            await payouts.mark_deleted(payout_id)
            await payouts.commit()
        if current is PayoutStatus.PENDING:
            self._count_transition("pending", "cancelled")

    async def events(self, client_id: uuid.UUID, payout_id: uuid.UUID) -> Sequence[Row]:
        """The payout's status changes, oldest first."""
        async with self._store.reading() as payouts:
            if await payouts.get(client_id, payout_id) is None:
                raise PayoutNotFound(payout_id)
            return await payouts.events(payout_id)

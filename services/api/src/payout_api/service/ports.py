"""What the use cases need of storage, as protocols: the SQL adapters (payout_api.adapters:
payout_repository, webhook_repository) implement them, and unit tests fake them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from payout_api.pagination import Cursor
from payout_core.domain.status import PayoutStatus

# A stored row by column name: SQLAlchemy's RowMapping (which also takes columns as keys), or
# asyncpg's Record (payout_core.db.engine.DriverConnection).
Row = Mapping[Any, Any]


class PayoutLookup(Protocol):
    """One client's payouts on one connection (every read is scoped to the client)."""

    async def get(
        self, client_id: uuid.UUID, payout_id: uuid.UUID, *, for_update: bool = False
    ) -> Row | None: ...


class Payouts(PayoutLookup, Protocol):
    """Outside a transaction block: each statement its own transaction."""

    async def insert_created(
        self,
        values: Mapping[str, Any],
        *,
        routing_key: str,
        payload: Mapping[str, Any],
        headers: Mapping[str, str],
        claim: Mapping[str, Any] | None = None,
    ) -> tuple[bool, datetime]:
        """(written, created_at); not written when a live record holds the idempotency key.
        IdempotencyKeyInUse: a concurrent request holds it."""
        ...

    async def get_idempotency_record(self, client_id: uuid.UUID, key: str) -> Row | None: ...

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
    ) -> tuple[Sequence[Row], bool]: ...

    async def events(self, payout_id: uuid.UUID) -> Sequence[Row]: ...


class PayoutsInTransaction(PayoutLookup, Protocol):
    """In one transaction, rolled back unless committed."""

    async def change_status(
        self,
        payout_id: uuid.UUID,
        current: PayoutStatus,
        requested: PayoutStatus,
        *,
        reason: str,
        request_id: str | None,
    ) -> Row | None: ...

    async def update_fields(
        self, payout_id: uuid.UUID, expected_version: int, values: Mapping[str, Any]
    ) -> Row | None: ...

    async def mark_deleted(self, payout_id: uuid.UUID) -> None: ...

    async def commit(self) -> None: ...


class PayoutStore(Protocol):
    def reading(self) -> AbstractAsyncContextManager[Payouts]:
        """Each statement its own transaction (reads, and writes that are one statement)."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[PayoutsInTransaction]:
        """One transaction, rolled back unless committed."""
        ...


@dataclass(frozen=True)
class EventFilter:
    """Which of a client's events to list; an empty field does not filter."""

    types: Sequence[str] = ()
    payout_id: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


class WebhookStore(Protocol):
    """Webhook endpoints, their delivery attempts and the events, each statement its own
    transaction. An endpoint or event of another client is never found (None, False)."""

    async def insert_endpoint(self, values: Mapping[str, Any]) -> Row: ...

    async def get_endpoint(self, client_id: uuid.UUID, endpoint_id: uuid.UUID) -> Row | None: ...

    async def list_endpoints(
        self, client_id: uuid.UUID, *, limit: int, cursor: Cursor | None
    ) -> tuple[Sequence[Row], bool]:
        """Up to limit rows in display order (newest first) on the cursor's side, and whether
        more rows lie beyond them in the direction of travel (as Payouts.list_page)."""
        ...

    async def update_endpoint(
        self, client_id: uuid.UUID, endpoint_id: uuid.UUID, values: Mapping[str, Any]
    ) -> Row | None: ...

    async def replace_secret(
        self, client_id: uuid.UUID, endpoint_id: uuid.UUID, sealed: str, *, overlap: timedelta
    ) -> Row | None:
        """The new secret in place; the current one kept as the previous secret until the
        database's now() + overlap."""
        ...

    async def delete_endpoint(self, client_id: uuid.UUID, endpoint_id: uuid.UUID) -> bool: ...

    async def list_attempts(self, endpoint_id: uuid.UUID, limit: int) -> Sequence[Row]:
        """The newest first."""
        ...

    async def list_events(
        self, client_id: uuid.UUID, only: EventFilter, *, limit: int, cursor: Cursor | None
    ) -> tuple[Sequence[Row], bool]:
        """As list_endpoints."""
        ...

    async def get_event(self, client_id: uuid.UUID, event_id: uuid.UUID) -> Row | None: ...

    async def add_to_outbox(self, routing_key: str, payload: Mapping[str, Any]) -> None: ...

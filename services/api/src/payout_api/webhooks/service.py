"""Use cases of webhook endpoints and events. Every query is scoped to the calling client:
another client's endpoint or event is a 404, as for payouts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payout_api.pagination import NEXT, PREVIOUS, Cursor
from payout_api.service.errors import EndpointNotFound, EventNotFound, UnsafeWebhookUrl
from payout_core.db.engine import autocommit
from payout_core.db.tables import outbox, webhook_attempts, webhook_endpoints, webhook_events
from payout_core.settings import Settings
from payout_core.webhooks.events import parse_event_id
from payout_core.webhooks.queues import ROUTING_KEY_EVENT, DeliveryOrder
from payout_core.webhooks.secrets import SecretBox, new_secret
from payout_core.webhooks.urls import UnsafeUrl, check_destination

ep = webhook_endpoints.c
ev = webhook_events.c


async def page(
    conn: AsyncConnection,
    table: sa.Table,
    conditions: list[Any],
    cursor: Cursor | None,
    limit: int,
) -> tuple[list[RowMapping], Cursor | None, Cursor | None]:
    """Newest first by (created_at, id); the cursors of the pages before and after."""
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
    rows = rows[:limit] if newest_first else rows[:limit][::-1]
    more_older = more if newest_first else True
    more_newer = (cursor is not None) if newest_first else more
    older = Cursor(NEXT, rows[-1]["created_at"], rows[-1]["id"]) if rows and more_older else None
    newer = Cursor(PREVIOUS, rows[0]["created_at"], rows[0]["id"]) if rows and more_newer else None
    return rows, older, newer


async def _get_endpoint(
    conn: AsyncConnection, client_id: uuid.UUID, endpoint_id: uuid.UUID
) -> RowMapping:
    row = (
        (
            await conn.execute(
                sa.select(webhook_endpoints).where(ep.id == endpoint_id, ep.client_id == client_id)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise EndpointNotFound(endpoint_id)
    return row


class WebhookUseCases:
    """Built once per process (payout_api.app); `wake_relay` as for PayoutUseCases."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        box: SecretBox,
        wake_relay: Callable[[], None],
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._box = box
        self._wake_relay = wake_relay

    async def _check_url(self, url: str) -> None:
        try:
            await check_destination(url, allow_private=self._settings.webhook_allow_private_urls)
        except UnsafeUrl as exc:
            raise UnsafeWebhookUrl(str(exc)) from None

    # --- endpoints ---------------------------------------------------------------------------

    async def create_endpoint(
        self,
        client_id: uuid.UUID,
        data: dict[str, Any],
    ) -> tuple[RowMapping, str]:
        """The new endpoint and its secret (shown to the client this once)."""
        await self._check_url(data["url"])
        secret = new_secret()
        async with self._engine.begin() as conn:
            row = (
                (
                    await conn.execute(
                        webhook_endpoints.insert()
                        .values(
                            id=uuid.uuid4(),
                            client_id=client_id,
                            url=data["url"],
                            description=data.get("description", ""),
                            enabled_events=sorted(set(data["enabled_events"])),
                            secret=self._box.seal(secret),
                        )
                        .returning(*webhook_endpoints.c)
                    )
                )
                .mappings()
                .one()
            )
        return row, secret

    async def get_endpoint(self, client_id: uuid.UUID, endpoint_id: uuid.UUID) -> RowMapping:
        async with autocommit(self._engine) as conn:
            return await _get_endpoint(conn, client_id, endpoint_id)

    async def list_endpoints(
        self, client_id: uuid.UUID, query: dict[str, Any]
    ) -> tuple[list[RowMapping], Cursor | None, Cursor | None]:
        async with autocommit(self._engine) as conn:
            return await page(
                conn,
                webhook_endpoints,
                [ep.client_id == client_id],
                query.get("cursor"),
                query["limit"],
            )

    async def update_endpoint(
        self,
        client_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        changes: dict[str, Any],
    ) -> RowMapping:
        if "url" in changes:
            await self._check_url(changes["url"])
        values: dict[str, Any] = dict(changes)
        if "enabled_events" in values:
            values["enabled_events"] = sorted(set(values["enabled_events"]))
        if values.get("status") == "enabled":  # enabled again: a fresh start
            values.update(disabled_reason=None, failing_since=None)
        elif values.get("status") == "disabled":
            values["disabled_reason"] = "by_client"
        async with self._engine.begin() as conn:
            await _get_endpoint(conn, client_id, endpoint_id)
            if not values:
                return await _get_endpoint(conn, client_id, endpoint_id)
            return (
                (
                    await conn.execute(
                        webhook_endpoints.update()
                        .where(ep.id == endpoint_id)
                        .values(**values, updated_at=sa.func.now())
                        .returning(*webhook_endpoints.c)
                    )
                )
                .mappings()
                .one()
            )

    async def delete_endpoint(self, client_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
        async with self._engine.begin() as conn:
            deleted = await conn.scalar(
                webhook_endpoints.delete()
                .where(ep.id == endpoint_id, ep.client_id == client_id)
                .returning(ep.id)
            )
        if deleted is None:
            raise EndpointNotFound(endpoint_id)

    async def rotate_secret(
        self,
        client_id: uuid.UUID,
        endpoint_id: uuid.UUID,
    ) -> tuple[RowMapping, str]:
        """A new secret; the current one keeps signing (beside it) for WEBHOOK_SECRET_OVERLAP_S."""
        secret = new_secret()
        async with self._engine.begin() as conn:
            await _get_endpoint(conn, client_id, endpoint_id)
            row = (
                (
                    await conn.execute(
                        webhook_endpoints.update()
                        .where(ep.id == endpoint_id)
                        .values(
                            secret=self._box.seal(secret),
                            previous_secret=ep.secret,
                            previous_secret_expires_at=sa.func.now()
                            + timedelta(seconds=self._settings.webhook_secret_overlap_s),
                            updated_at=sa.func.now(),
                        )
                        .returning(*webhook_endpoints.c)
                    )
                )
                .mappings()
                .one()
            )
        return row, secret

    async def list_attempts(
        self, client_id: uuid.UUID, endpoint_id: uuid.UUID, limit: int
    ) -> list[RowMapping]:
        """The newest attempts first."""
        async with autocommit(self._engine) as conn:
            await _get_endpoint(conn, client_id, endpoint_id)
            result = await conn.execute(
                sa.select(webhook_attempts)
                .where(webhook_attempts.c.endpoint_id == endpoint_id)
                .order_by(webhook_attempts.c.id.desc())
                .limit(limit)
            )
            return list(result.mappings())

    # --- events ------------------------------------------------------------------------------

    async def list_events(
        self, client_id: uuid.UUID, query: dict[str, Any]
    ) -> tuple[list[RowMapping], Cursor | None, Cursor | None]:
        conditions: list[Any] = [ev.client_id == client_id]
        types: Sequence[str] = query.get("type", ())
        if types:
            conditions.append(ev.type.in_(list(types)))
        if "payout_id" in query:
            conditions.append(ev.payout_id == query["payout_id"])
        if "created_after" in query:
            conditions.append(ev.created_at > query["created_after"])
        if "created_before" in query:
            conditions.append(ev.created_at < query["created_before"])
        async with autocommit(self._engine) as conn:
            return await page(conn, webhook_events, conditions, query.get("cursor"), query["limit"])

    async def get_event(self, client_id: uuid.UUID, raw_id: str) -> RowMapping:
        event_id = parse_event_id(raw_id)
        if event_id is None:
            raise EventNotFound(raw_id)
        async with autocommit(self._engine) as conn:
            row = (
                (
                    await conn.execute(
                        sa.select(webhook_events).where(
                            ev.id == event_id, ev.client_id == client_id
                        )
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise EventNotFound(raw_id)
        return row

    async def redeliver(
        self,
        client_id: uuid.UUID,
        raw_id: str,
        endpoint_id: uuid.UUID | None,
    ) -> DeliveryOrder:
        """Queue the event again (through the outbox, so the order survives a broker outage)."""
        event = await self.get_event(client_id, raw_id)
        order = DeliveryOrder(event["id"], endpoint_id)
        async with self._engine.begin() as conn:
            if endpoint_id is not None:
                await _get_endpoint(conn, client_id, endpoint_id)
            await conn.execute(
                outbox.insert().values(routing_key=ROUTING_KEY_EVENT, payload=order.to_payload())
            )
        self._wake_relay()  # the order is committed: publish it now, not at the next poll
        return order

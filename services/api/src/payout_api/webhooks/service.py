"""Use cases of webhook endpoints and events, one object built once per process
(payout_api.app): this module decides and writes through a WebhookStore
(payout_api.service.ports). Every read is scoped to the calling client: another client's
endpoint or event is not found (a 404), as for payouts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from payout_api.pagination import Cursor, cursors_around
from payout_api.service.errors import EndpointNotFound, EventNotFound, UnsafeWebhookUrl
from payout_api.service.ports import EventFilter, Row, WebhookStore
from payout_core.settings import Settings
from payout_core.webhooks.events import parse_event_id
from payout_core.webhooks.queues import ROUTING_KEY_EVENT, DeliveryOrder
from payout_core.webhooks.secrets import SecretBox, new_secret
from payout_core.webhooks.urls import UnsafeUrl, check_destination

PageOfRows = tuple[Sequence[Row], Cursor | None, Cursor | None]


def _event_types(enabled_events: Sequence[str]) -> list[str]:
    """Each type once, in one order: what the endpoint stores and shows."""
    return sorted(set(enabled_events))


class WebhookUseCases:
    """`wake_relay` as for PayoutUseCases."""

    def __init__(
        self,
        store: WebhookStore,
        settings: Settings,
        box: SecretBox,
        wake_relay: Callable[[], None],
    ) -> None:
        self._store = store
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
    ) -> tuple[Row, str]:
        """The new endpoint and its secret (shown to the client this once)."""
        await self._check_url(data["url"])
        secret = new_secret()
        row = await self._store.insert_endpoint(
            {
                "id": uuid.uuid4(),
                "client_id": client_id,
                "url": data["url"],
                "description": data.get("description", ""),
                "enabled_events": _event_types(data["enabled_events"]),
                "secret": self._box.seal(secret),
            }
        )
        return row, secret

    async def get_endpoint(self, client_id: uuid.UUID, endpoint_id: uuid.UUID) -> Row:
        row = await self._store.get_endpoint(client_id, endpoint_id)
        if row is None:
            raise EndpointNotFound(endpoint_id)
        return row

    async def list_endpoints(self, client_id: uuid.UUID, query: dict[str, Any]) -> PageOfRows:
        cursor: Cursor | None = query.get("cursor")
        rows, has_more = await self._store.list_endpoints(
            client_id, limit=query["limit"], cursor=cursor
        )
        return (rows, *cursors_around(rows, cursor, has_more))

    async def update_endpoint(
        self,
        client_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        changes: dict[str, Any],
    ) -> Row:
        if "url" in changes:
            await self._check_url(changes["url"])
        values: dict[str, Any] = dict(changes)
        if "enabled_events" in values:
            values["enabled_events"] = _event_types(values["enabled_events"])
        if values.get("status") == "enabled":  # enabled again: a fresh start
            values.update(disabled_reason=None, failing_since=None)
        elif values.get("status") == "disabled":
            values["disabled_reason"] = "by_client"
        if not values:
            return await self.get_endpoint(client_id, endpoint_id)
        row = await self._store.update_endpoint(client_id, endpoint_id, values)
        if row is None:
            raise EndpointNotFound(endpoint_id)
        return row

    async def delete_endpoint(self, client_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
        if not await self._store.delete_endpoint(client_id, endpoint_id):
            raise EndpointNotFound(endpoint_id)

    async def rotate_secret(
        self,
        client_id: uuid.UUID,
        endpoint_id: uuid.UUID,
    ) -> tuple[Row, str]:
        """A new secret; the current one keeps signing (beside it) for WEBHOOK_SECRET_OVERLAP_S."""
        secret = new_secret()
        row = await self._store.replace_secret(
            client_id,
            endpoint_id,
            self._box.seal(secret),
            overlap=timedelta(seconds=self._settings.webhook_secret_overlap_s),
        )
        if row is None:
            raise EndpointNotFound(endpoint_id)
        return row, secret

    async def list_attempts(
        self, client_id: uuid.UUID, endpoint_id: uuid.UUID, limit: int
    ) -> Sequence[Row]:
        """The newest attempts first."""
        await self.get_endpoint(client_id, endpoint_id)
        return await self._store.list_attempts(endpoint_id, limit)

    # --- events ------------------------------------------------------------------------------

    async def list_events(self, client_id: uuid.UUID, query: dict[str, Any]) -> PageOfRows:
        cursor: Cursor | None = query.get("cursor")
        only = EventFilter(
            types=query.get("type", ()),
            payout_id=query.get("payout_id"),
            created_after=query.get("created_after"),
            created_before=query.get("created_before"),
        )
        rows, has_more = await self._store.list_events(
            client_id, only, limit=query["limit"], cursor=cursor
        )
        return (rows, *cursors_around(rows, cursor, has_more))

    async def get_event(self, client_id: uuid.UUID, raw_id: str) -> Row:
        event_id = parse_event_id(raw_id)
        row = None if event_id is None else await self._store.get_event(client_id, event_id)
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
        if endpoint_id is not None:
            await self.get_endpoint(client_id, endpoint_id)
        order = DeliveryOrder(event["id"], endpoint_id)
        await self._store.add_to_outbox(ROUTING_KEY_EVENT, order.to_payload())
        self._wake_relay()  # the order is committed: publish it now, not at the next poll
        return order

"""The webhook use cases against an in-memory store: no PostgreSQL, no RabbitMQ, no DNS (the
URLs are refused or allowed by their syntax alone)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from payout_api.pagination import NEXT, Cursor
from payout_api.service.errors import EndpointNotFound, EventNotFound, UnsafeWebhookUrl
from payout_api.service.ports import EventFilter
from payout_api.webhooks.service import WebhookUseCases
from payout_core.settings import Settings
from payout_core.webhooks.events import public_event_id
from payout_core.webhooks.queues import ROUTING_KEY_EVENT
from payout_core.webhooks.secrets import SecretBox

CLIENT = uuid.UUID(int=1)
OTHER_CLIENT = uuid.UUID(int=2)
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
OVERLAP_S = 3600
SETTINGS = Settings.from_env(
    {"WEBHOOK_ALLOW_PRIVATE_URLS": "true", "WEBHOOK_SECRET_OVERLAP_S": str(OVERLAP_S)}
)
ENDPOINT = {"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"], "description": "ERP"}


class FakeWebhookStore:
    """The store's statements over dicts, each applied at once; what was asked is recorded."""

    def __init__(self) -> None:
        self.endpoints: dict[uuid.UUID, dict[str, Any]] = {}
        self.events: dict[uuid.UUID, dict[str, Any]] = {}
        self.outbox: list[tuple[str, dict[str, Any]]] = []
        self.updates: list[dict[str, Any]] = []
        self.listed: list[dict[str, Any]] = []
        self.has_more = False

    def _owned(self, client_id: uuid.UUID, endpoint_id: uuid.UUID) -> dict[str, Any] | None:
        row = self.endpoints.get(endpoint_id)
        return row if row is not None and row["client_id"] == client_id else None

    async def insert_endpoint(self, values: Mapping[str, Any]) -> dict[str, Any]:
        row = {**values, "status": "enabled", "disabled_reason": None, "failing_since": None}
        row.update(previous_secret=None, created_at=NOW, updated_at=NOW)
        self.endpoints[values["id"]] = row
        return dict(row)

    async def get_endpoint(
        self, client_id: uuid.UUID, endpoint_id: uuid.UUID
    ) -> dict[str, Any] | None:
        row = self._owned(client_id, endpoint_id)
        return None if row is None else dict(row)

    async def list_endpoints(
        self, client_id: uuid.UUID, *, limit: int, cursor: Cursor | None
    ) -> tuple[list[dict[str, Any]], bool]:
        self.listed.append({"client_id": client_id, "limit": limit, "cursor": cursor})
        rows = [r for r in self.endpoints.values() if r["client_id"] == client_id]
        return rows[:limit], self.has_more

    async def update_endpoint(
        self, client_id: uuid.UUID, endpoint_id: uuid.UUID, values: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        row = self._owned(client_id, endpoint_id)
        if row is None:
            return None
        self.updates.append(dict(values))
        row.update(values)
        return dict(row)

    async def replace_secret(
        self, client_id: uuid.UUID, endpoint_id: uuid.UUID, sealed: str, *, overlap: timedelta
    ) -> dict[str, Any] | None:
        row = self._owned(client_id, endpoint_id)
        if row is None:
            return None
        row.update(
            previous_secret=row["secret"],
            previous_secret_expires_at=NOW + overlap,
            secret=sealed,
        )
        return dict(row)

    async def delete_endpoint(self, client_id: uuid.UUID, endpoint_id: uuid.UUID) -> bool:
        return self._owned(client_id, endpoint_id) is not None and bool(
            self.endpoints.pop(endpoint_id)
        )

    async def list_attempts(self, endpoint_id: uuid.UUID, limit: int) -> list[dict[str, Any]]:
        return [{"endpoint_id": endpoint_id, "attempt": 1}]

    async def list_events(
        self, client_id: uuid.UUID, only: EventFilter, **asked: Any
    ) -> tuple[list[dict[str, Any]], bool]:
        self.listed.append({"client_id": client_id, "only": only, **asked})
        rows = [e for e in self.events.values() if e["client_id"] == client_id]
        return rows, self.has_more

    async def get_event(self, client_id: uuid.UUID, event_id: uuid.UUID) -> dict[str, Any] | None:
        row = self.events.get(event_id)
        return row if row is not None and row["client_id"] == client_id else None

    async def add_to_outbox(self, routing_key: str, payload: Mapping[str, Any]) -> None:
        self.outbox.append((routing_key, dict(payload)))


class World:
    def __init__(self, settings: Settings = SETTINGS) -> None:
        self.store = FakeWebhookStore()
        self.box = SecretBox(Fernet.generate_key().decode())
        self.wakes = 0
        self.webhooks = WebhookUseCases(self.store, settings, self.box, self._wake)

    def _wake(self) -> None:
        self.wakes += 1

    async def endpoint(self, **data: Any) -> uuid.UUID:
        row, _ = await self.webhooks.create_endpoint(CLIENT, {**ENDPOINT, **data})
        endpoint_id: uuid.UUID = row["id"]
        return endpoint_id

    def event(self, client_id: uuid.UUID = CLIENT) -> str:
        event_id = uuid.uuid4()
        self.store.events[event_id] = {"id": event_id, "client_id": client_id, "created_at": NOW}
        return public_event_id(event_id)


@pytest.fixture
def world() -> World:
    return World()


async def test_create_stores_the_sealed_secret_and_shows_it_once(world: World):
    row, secret = await world.webhooks.create_endpoint(CLIENT, ENDPOINT)
    stored = world.store.endpoints[row["id"]]
    assert stored["client_id"] == CLIENT and stored["url"] == ENDPOINT["url"]
    assert stored["secret"] != secret and world.box.open(stored["secret"]) == secret
    assert secret.startswith("whsec_")


async def test_an_unsafe_url_is_refused_and_nothing_is_stored():
    world = World(dataclasses.replace(SETTINGS, webhook_allow_private_urls=False))
    with pytest.raises(UnsafeWebhookUrl) as refused:
        await world.webhooks.create_endpoint(CLIENT, ENDPOINT)
    assert refused.value.errors == {"url": ["The URL must be an https:// URL."]}
    assert world.store.endpoints == {}


async def test_an_unsafe_url_is_refused_on_update_and_nothing_changes(world: World):
    endpoint_id = await world.endpoint()
    with pytest.raises(UnsafeWebhookUrl):
        await world.webhooks.update_endpoint(CLIENT, endpoint_id, {"url": "ftp://example.com/"})
    assert world.store.updates == []
    assert world.store.endpoints[endpoint_id]["url"] == ENDPOINT["url"]


async def test_enabled_events_are_stored_once_each_and_sorted(world: World):
    events = ["payout.failed", "payout.created", "payout.failed"]
    endpoint_id = await world.endpoint(enabled_events=events)
    assert world.store.endpoints[endpoint_id]["enabled_events"] == [
        "payout.created",
        "payout.failed",
    ]
    await world.webhooks.update_endpoint(
        CLIENT, endpoint_id, {"enabled_events": ["payout.processed", "*", "payout.processed"]}
    )
    assert world.store.updates == [{"enabled_events": ["*", "payout.processed"]}]


async def test_enabling_again_clears_the_reason_and_the_failure(world: World):
    endpoint_id = await world.endpoint()
    world.store.endpoints[endpoint_id].update(
        status="disabled", disabled_reason="failing", failing_since=NOW
    )
    row = await world.webhooks.update_endpoint(CLIENT, endpoint_id, {"status": "enabled"})
    assert world.store.updates == [
        {"status": "enabled", "disabled_reason": None, "failing_since": None}
    ]
    assert (row["status"], row["disabled_reason"], row["failing_since"]) == ("enabled", None, None)


async def test_disabling_by_the_client_says_so(world: World):
    endpoint_id = await world.endpoint()
    await world.webhooks.update_endpoint(CLIENT, endpoint_id, {"status": "disabled"})
    assert world.store.updates == [{"status": "disabled", "disabled_reason": "by_client"}]


async def test_an_empty_change_returns_the_endpoint_without_writing(world: World):
    endpoint_id = await world.endpoint()
    row = await world.webhooks.update_endpoint(CLIENT, endpoint_id, {})
    assert row["id"] == endpoint_id and world.store.updates == []
    with pytest.raises(EndpointNotFound):
        await world.webhooks.update_endpoint(OTHER_CLIENT, endpoint_id, {})


async def test_another_clients_endpoint_is_not_found(world: World):
    endpoint_id = await world.endpoint()
    before = dict(world.store.endpoints[endpoint_id])
    webhooks = world.webhooks
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "get": lambda: webhooks.get_endpoint(OTHER_CLIENT, endpoint_id),
        "update": lambda: webhooks.update_endpoint(OTHER_CLIENT, endpoint_id, {"description": "x"}),
        "delete": lambda: webhooks.delete_endpoint(OTHER_CLIENT, endpoint_id),
        "rotate": lambda: webhooks.rotate_secret(OTHER_CLIENT, endpoint_id),
        "attempts": lambda: webhooks.list_attempts(OTHER_CLIENT, endpoint_id, 100),
    }
    for name, call in calls.items():
        with pytest.raises(EndpointNotFound):
            await call()
        assert world.store.endpoints[endpoint_id] == before, name
    assert world.store.updates == []


async def test_delete_removes_the_endpoint_once(world: World):
    endpoint_id = await world.endpoint()
    await world.webhooks.delete_endpoint(CLIENT, endpoint_id)
    assert endpoint_id not in world.store.endpoints
    with pytest.raises(EndpointNotFound):
        await world.webhooks.delete_endpoint(CLIENT, endpoint_id)


async def test_rotation_gives_a_new_secret_and_keeps_the_old_one_for_the_overlap(world: World):
    row, first = await world.webhooks.create_endpoint(CLIENT, ENDPOINT)
    old_sealed = world.store.endpoints[row["id"]]["secret"]
    rotated, second = await world.webhooks.rotate_secret(CLIENT, row["id"])
    assert second != first
    stored = world.store.endpoints[row["id"]]
    assert world.box.open(stored["secret"]) == second
    assert stored["previous_secret"] == old_sealed
    assert rotated["previous_secret_expires_at"] == NOW + timedelta(seconds=OVERLAP_S)


async def test_a_full_page_has_a_cursor_to_the_older_rows(world: World):
    await world.endpoint()
    world.store.has_more = True
    rows, older, newer = await world.webhooks.list_endpoints(CLIENT, {"limit": 1})
    assert [r["client_id"] for r in rows] == [CLIENT] and newer is None
    assert older == Cursor(NEXT, NOW, rows[0]["id"])
    assert world.store.listed == [{"client_id": CLIENT, "limit": 1, "cursor": None}]


async def test_the_event_filters_reach_the_store(world: World):
    payout_id = uuid.uuid4()
    query = {"limit": 5, "type": ["payout.failed"], "payout_id": payout_id, "created_after": NOW}
    rows, older, newer = await world.webhooks.list_events(CLIENT, query)
    assert (rows, older, newer) == ([], None, None)
    only = EventFilter(types=["payout.failed"], payout_id=payout_id, created_after=NOW)
    assert world.store.listed == [{"client_id": CLIENT, "only": only, "limit": 5, "cursor": None}]


@pytest.mark.parametrize("raw_id", ["evt_nothex", "not-an-event", "evt_" + "0" * 32])
async def test_an_unknown_event_is_not_found(world: World, raw_id: str):
    with pytest.raises(EventNotFound):
        await world.webhooks.get_event(CLIENT, raw_id)


async def test_another_clients_event_is_not_found(world: World):
    with pytest.raises(EventNotFound):
        await world.webhooks.get_event(CLIENT, world.event(OTHER_CLIENT))


async def test_redelivery_queues_an_order_and_wakes_the_relay(world: World):
    raw_id = world.event()
    endpoint_id = await world.endpoint()
    order = await world.webhooks.redeliver(CLIENT, raw_id, endpoint_id)
    assert public_event_id(order.event_id) == raw_id and order.endpoint_id == endpoint_id
    payload = {"event_id": str(order.event_id), "endpoint_id": str(endpoint_id)}
    assert world.store.outbox == [(ROUTING_KEY_EVENT, payload)]
    assert world.wakes == 1


async def test_redelivering_an_unknown_event_queues_nothing(world: World):
    with pytest.raises(EventNotFound):
        await world.webhooks.redeliver(CLIENT, world.event(OTHER_CLIENT), None)
    assert world.store.outbox == [] and world.wakes == 0


async def test_redelivering_to_another_clients_endpoint_queues_nothing(world: World):
    raw_id = world.event()
    theirs, _ = await world.webhooks.create_endpoint(OTHER_CLIENT, ENDPOINT)
    with pytest.raises(EndpointNotFound):
        await world.webhooks.redeliver(CLIENT, raw_id, theirs["id"])
    assert world.store.outbox == [] and world.wakes == 0

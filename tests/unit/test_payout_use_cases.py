"""The payout use cases against an in-memory store: no PostgreSQL, no RabbitMQ."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from payout_api.service.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidChange,
    InvalidPayout,
    PayoutNotFound,
    VersionMismatch,
)
from payout_api.service.payouts import IdempotentRequest, PayoutUseCases
from payout_core.domain.status import PayoutStatus
from payout_core.messaging.contracts import ROUTING_KEY_CREATED, PayoutCreated
from payout_core.metrics import ApiMetrics

CLIENT = uuid.UUID(int=1)
OTHER_CLIENT = uuid.UUID(int=2)
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class FakePayouts:
    """The store's statements over dicts; changes apply at once, commits are counted."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def get(
        self, client_id: uuid.UUID, payout_id: uuid.UUID, *, for_update: bool = False
    ) -> dict[str, Any] | None:
        row = self._store.payouts.get(payout_id)
        if row is None or row["client_id"] != client_id or row["deleted"]:
            return None
        return dict(row)

    async def insert_created(
        self,
        values: Mapping[str, Any],
        *,
        routing_key: str,
        payload: Mapping[str, Any],
        headers: Mapping[str, str],
        claim: Mapping[str, Any] | None = None,
    ) -> tuple[bool, datetime]:
        key = (values["client_id"], values["idempotency_key"])
        if key in self._store.held_keys:
            raise IdempotencyKeyInUse()
        if claim is not None and key in self._store.records:
            return False, NOW
        self._store.payouts[values["id"]] = {
            **values,
            "status": "pending",
            "version": 1,
            "deleted": False,
            "created_at": NOW,
        }
        self._store.outbox.append((routing_key, dict(payload)))
        if claim is not None:
            self._store.records[key] = {**claim, "payout_id": values["id"], "created_at": NOW}
        return True, NOW

    async def get_idempotency_record(self, client_id: uuid.UUID, key: str) -> Any:
        return self._store.records.get((client_id, key))

    async def list_page(self, client_id: uuid.UUID, **_: Any) -> tuple[list[Any], bool]:
        raise NotImplementedError

    async def change_status(
        self,
        payout_id: uuid.UUID,
        current: PayoutStatus,
        requested: PayoutStatus,
        *,
        reason: str,
        request_id: str | None,
    ) -> dict[str, Any] | None:
        row = self._store.payouts[payout_id]
        if row["status"] != current.value:
            return None
        row.update(status=requested.value, version=row["version"] + 1)
        self._store.events.append((payout_id, current.value, requested.value, reason))
        return dict(row)

    async def update_fields(
        self, payout_id: uuid.UUID, expected_version: int, values: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        row = self._store.payouts[payout_id]
        if row["version"] != expected_version:
            return None
        row.update(values, version=row["version"] + 1)
        return dict(row)

    async def mark_deleted(self, payout_id: uuid.UUID) -> None:
        self._store.payouts[payout_id]["deleted"] = True

    async def events(self, payout_id: uuid.UUID) -> Sequence[Any]:
        return [e for e in self._store.events if e[0] == payout_id]

    async def commit(self) -> None:
        self._store.commits += 1


class FakeStore:
    def __init__(self) -> None:
        self.payouts: dict[uuid.UUID, dict[str, Any]] = {}
        self.records: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}
        self.held_keys: set[tuple[uuid.UUID, str]] = set()
        self.outbox: list[tuple[str, dict[str, Any]]] = []
        self.events: list[tuple[uuid.UUID, str, str, str]] = []
        self.commits = 0

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[FakePayouts]:
        yield FakePayouts(self)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakePayouts]:
        yield FakePayouts(self)


class World:
    def __init__(self) -> None:
        self.store = FakeStore()
        self.wakes = 0
        self.payouts = PayoutUseCases(self.store, ApiMetrics(), self._wake, clock=lambda: NOW)

    def _wake(self) -> None:
        self.wakes += 1

    def stored(self, payout_id: uuid.UUID) -> dict[str, Any]:
        return self.store.payouts[payout_id]

    async def create(
        self, key: str | None = None, request_hash: str = "h1", **data: Any
    ) -> uuid.UUID:
        idempotency = IdempotentRequest(key, request_hash) if key is not None else None
        created = await self.payouts.create(
            CLIENT, new_payout(**data), idempotency=idempotency, request_id="r1"
        )
        return created.payout_id

    async def with_status(self, status: PayoutStatus) -> uuid.UUID:
        payout_id = await self.create()
        self.stored(payout_id)["status"] = status.value
        return payout_id


def new_payout(**overrides: Any) -> dict[str, Any]:
    return {
        "amount": Decimal("10.50"),
        "currency": "EUR",
        "recipient_details": {"account": "DE89370400440532013000", "name": "Ada"},
        "description": "rent",
        "metadata": {},
        **overrides,
    }


@pytest.fixture
def world() -> World:
    return World()


async def test_create_stores_the_payout_queues_its_message_and_wakes_the_relay(world: World):
    created = await world.payouts.create(CLIENT, new_payout(), idempotency=None, request_id="r1")
    assert not created.replayed
    assert created.payout["status"] == "pending" and created.payout["amount"] == "10.50"
    assert created.payout["created_at"] == created.payout["updated_at"] == NOW
    assert world.stored(created.payout_id)["status"] == "pending"
    [(routing_key, message)] = world.store.outbox
    assert routing_key == ROUTING_KEY_CREATED
    assert PayoutCreated.from_body(orjson.dumps(message)) == PayoutCreated(created.payout_id, NOW)
    assert world.wakes == 1


async def test_the_same_key_and_request_replay_the_first_answer(world: World):
    key = IdempotentRequest("k", "h1")
    first = await world.payouts.create(CLIENT, new_payout(), idempotency=key, request_id="r1")
    again = await world.payouts.create(CLIENT, new_payout(), idempotency=key, request_id="r2")
    assert again.replayed and again.payout_id == first.payout_id
    assert again.payout == first.payout
    assert len(world.store.payouts) == 1 and world.wakes == 1  # nothing new to publish


async def test_the_same_key_with_another_request_is_refused(world: World):
    await world.create(key="k", request_hash="h1")
    with pytest.raises(IdempotencyKeyReused):
        await world.create(key="k", request_hash="h2")
    assert len(world.store.payouts) == 1


async def test_a_key_held_by_a_concurrent_request_is_in_use(world: World):
    world.store.held_keys.add((CLIENT, "k"))
    with pytest.raises(IdempotencyKeyInUse):
        await world.create(key="k")
    assert world.store.payouts == {} and world.wakes == 0


async def test_get_finds_only_the_clients_own_payout(world: World):
    payout_id = await world.create()
    assert (await world.payouts.get(CLIENT, payout_id))["id"] == payout_id
    with pytest.raises(PayoutNotFound):
        await world.payouts.get(OTHER_CLIENT, payout_id)
    with pytest.raises(PayoutNotFound):
        await world.payouts.get(CLIENT, uuid.uuid4())


async def test_a_change_to_another_version_is_refused(world: World):
    payout_id = await world.create()
    with pytest.raises(VersionMismatch) as refused:
        await world.payouts.update(
            CLIENT, payout_id, {"description": "x"}, accepted_versions={2}, request_id="r"
        )
    assert refused.value.current_version == 1
    assert world.stored(payout_id)["description"] == "rent" and world.store.commits == 0


async def test_a_change_to_the_current_version_is_made(world: World):
    payout_id = await world.create()
    updated = await world.payouts.update(
        CLIENT, payout_id, {"description": "x"}, accepted_versions={1}, request_id="r"
    )
    assert updated["description"] == "x" and updated["version"] == 2
    assert world.store.commits == 1


async def test_cancelling_a_pending_payout_records_the_transition(world: World):
    payout_id = await world.create()
    updated = await world.payouts.update(
        CLIENT, payout_id, {"status": "cancelled"}, accepted_versions=None, request_id="r"
    )
    assert updated["status"] == "cancelled" and world.store.commits == 1
    assert world.store.events == [(payout_id, "pending", "cancelled", "cancelled_by_client")]


@pytest.mark.parametrize("status", [PayoutStatus.PROCESSING, PayoutStatus.PROCESSED])
async def test_only_a_pending_payout_can_be_cancelled_or_changed(
    world: World, status: PayoutStatus
):
    payout_id = await world.with_status(status)
    for changes in ({"status": "cancelled"}, {"description": "x"}):
        with pytest.raises(InvalidChange):
            await world.payouts.update(
                CLIENT, payout_id, changes, accepted_versions=None, request_id="r"
            )
    assert world.stored(payout_id)["status"] == status.value and world.store.commits == 0


async def test_an_amount_the_currency_cannot_hold_is_invalid(world: World):
    payout_id = await world.create(currency="JPY", amount=Decimal("100"))
    with pytest.raises(InvalidPayout) as refused:
        await world.payouts.update(
            CLIENT, payout_id, {"amount": Decimal("1.5")}, accepted_versions=None, request_id="r"
        )
    assert "amount" in refused.value.errors
    assert world.stored(payout_id)["amount"] == Decimal("100")


async def test_deleting_a_pending_payout_cancels_and_hides_it(world: World):
    payout_id = await world.create()
    await world.payouts.delete(CLIENT, payout_id, accepted_versions=None, request_id="r")
    assert world.stored(payout_id)["status"] == "cancelled"
    assert world.store.events == [(payout_id, "pending", "cancelled", "deleted_by_client")]
    with pytest.raises(PayoutNotFound):
        await world.payouts.get(CLIENT, payout_id)


async def test_deleting_a_cancelled_payout_hides_it_without_a_transition(world: World):
    payout_id = await world.with_status(PayoutStatus.CANCELLED)
    await world.payouts.delete(CLIENT, payout_id, accepted_versions=None, request_id="r")
    assert world.stored(payout_id)["deleted"] and world.store.events == []


async def test_a_processed_payout_cannot_be_deleted(world: World):
    payout_id = await world.with_status(PayoutStatus.PROCESSED)
    with pytest.raises(InvalidChange):
        await world.payouts.delete(CLIENT, payout_id, accepted_versions=None, request_id="r")
    assert not world.stored(payout_id)["deleted"] and world.store.commits == 0


async def test_the_events_of_an_unknown_payout_are_not_found(world: World):
    with pytest.raises(PayoutNotFound):
        await world.payouts.events(CLIENT, uuid.uuid4())

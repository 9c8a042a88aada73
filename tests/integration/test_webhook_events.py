"""Webhook events are written by the database in the transaction of each status change: the
event's data.object is the payout exactly as GET returned it then."""

from __future__ import annotations

import uuid

import orjson
import sqlalchemy as sa

from payout_core.db.tables import outbox, webhook_events
from payout_core.representation import dumps
from payout_core.webhooks.events import event_json, parse_event_id, public_event_id

PAYOUT = {
    "amount": "12.50",
    "currency": "EUR",
    "recipient_details": {"account": "DE89370400440532013000", "name": "Ada Lovelace"},
    "description": "Invoice 7",
    "metadata": {"order": "7"},
}


async def _events(engine, payout_id):
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(webhook_events)
            .where(webhook_events.c.payout_id == payout_id)
            .order_by(webhook_events.c.created_at)
        )
        return [orjson.loads(dumps(event_json(r))) for r in rows.mappings()]


async def test_each_status_change_writes_one_event_with_the_payout_as_get_returns_it(
    api, auth, engine
):
    created = await api.post("/api/payouts/", json=PAYOUT, headers=auth)
    assert created.status == 201
    pid = (await created.json())["id"]
    as_created = await (await api.get(f"/api/payouts/{pid}/", headers=auth)).json()
    resp = await api.patch(f"/api/payouts/{pid}/", json={"status": "cancelled"}, headers=auth)
    assert resp.status == 200
    as_cancelled = await (await api.get(f"/api/payouts/{pid}/", headers=auth)).json()

    events = await _events(engine, pid)
    assert [e["type"] for e in events] == ["payout.created", "payout.cancelled"]
    assert events[0]["data"]["object"] == as_created
    assert events[1]["data"]["object"] == as_cancelled
    assert all(e["id"].startswith("evt_") for e in events)


async def test_a_change_that_does_not_move_the_status_writes_no_event(api, auth, engine):
    pid = (await (await api.post("/api/payouts/", json=PAYOUT, headers=auth)).json())["id"]
    resp = await api.patch(f"/api/payouts/{pid}/", json={"description": "x"}, headers=auth)
    assert resp.status == 200
    assert [e["type"] for e in await _events(engine, pid)] == ["payout.created"]


async def test_a_rolled_back_change_leaves_no_event(engine, api, auth):
    pid = (await (await api.post("/api/payouts/", json=PAYOUT, headers=auth)).json())["id"]
    async with engine.connect() as conn:
        await conn.execute(
            sa.text("UPDATE payouts SET status = 'cancelled' WHERE id = :id"), {"id": pid}
        )
        assert (
            await conn.scalar(sa.select(sa.func.count()).where(webhook_events.c.payout_id == pid))
            == 2
        )
        await conn.rollback()
    assert [e["type"] for e in await _events(engine, pid)] == ["payout.created"]


async def test_no_fan_out_message_without_an_enabled_endpoint(api, auth, engine):
    async with engine.connect() as conn:
        before = await conn.scalar(
            sa.select(sa.func.count()).where(outbox.c.routing_key == "webhook.event")
        )
    await api.post("/api/payouts/", json=PAYOUT, headers=auth)
    async with engine.connect() as conn:
        after = await conn.scalar(
            sa.select(sa.func.count()).where(outbox.c.routing_key == "webhook.event")
        )
    assert after == before


def test_event_ids_round_trip_and_strangers_are_refused():
    import uuid

    key = uuid.uuid4()
    assert parse_event_id(public_event_id(key)) == key
    for text in ("evt_", "evt_zz", key.hex, "evt_" + key.hex + "0", "pay_" + key.hex):
        assert parse_event_id(text) is None


async def test_events_and_attempts_past_the_retention_are_pruned_in_batches(api, auth, engine):
    from payout_core.housekeeping import Retention, housekeep_once

    ids = [
        (await (await api.post("/api/payouts/", json=PAYOUT, headers=auth)).json())["id"]
        for _ in range(5)
    ]
    async with engine.begin() as conn:
        # Four of the five events are 31 days old (the default retention is 30).
        await conn.execute(
            sa.text(
                "UPDATE webhook_events SET created_at = now() - interval '31 days' "
                "WHERE payout_id = ANY(:ids)"
            ),
            {"ids": [uuid.UUID(i) for i in ids[:4]]},
        )
        kept_before = await conn.scalar(
            sa.select(sa.func.count()).where(
                webhook_events.c.created_at > sa.func.now() - sa.text("interval '1 day'")
            )
        )
    deleted = await housekeep_once(
        engine, None, Retention(outbox_published_s=3600, dead_letters_s=0, batch=3)
    )
    assert deleted is not None and deleted["webhook_events"] == 4  # two statements: 3 + 1
    async with engine.connect() as conn:
        left = set(
            await conn.scalars(
                sa.select(webhook_events.c.payout_id).where(
                    webhook_events.c.payout_id == sa.any_(sa.literal([uuid.UUID(i) for i in ids]))
                )
            )
        )
        kept_after = await conn.scalar(
            sa.select(sa.func.count()).where(
                webhook_events.c.created_at > sa.func.now() - sa.text("interval '1 day'")
            )
        )
    assert left == {uuid.UUID(ids[4])}
    assert kept_after == kept_before

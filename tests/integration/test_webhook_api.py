"""The webhook endpoints and events API against real PostgreSQL and RabbitMQ: the contract of
issue 17 (fields, status codes), tenant isolation, URL safety, secret rotation."""

from __future__ import annotations

import dataclasses
import re

import pytest
import sqlalchemy as sa

from payout_api.app import create_app
from payout_api.keys import BROKER
from payout_core.db.tables import outbox, webhook_endpoints
from payout_core.webhooks.secrets import SecretBox

ENDPOINT = {"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"], "description": "ERP"}
PAYOUT = {
    "amount": "12.50",
    "currency": "EUR",
    "recipient_details": {"account": "DE89370400440532013000", "name": "Ada Lovelace"},
}


async def _create(api, auth, body=None):
    resp = await api.post("/api/webhook-endpoints/", json=body or ENDPOINT, headers=auth)
    return resp.status, await resp.json()


async def test_create_shows_the_secret_once(api, auth):
    status, created = await _create(api, auth)
    assert status == 201
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", created["secret"])
    assert created["status"] == "enabled"
    assert created["enabled_events"] == ["*"]
    assert {"id", "url", "created_at", "description"} <= set(created)
    shown = await (await api.get(f"/api/webhook-endpoints/{created['id']}/", headers=auth)).json()
    assert "secret" not in shown
    listed = await (await api.get("/api/webhook-endpoints/", headers=auth)).json()
    assert [e["id"] for e in listed["results"]] == [created["id"]]
    assert listed["next"] is None and listed["previous"] is None


async def test_list_is_paged_newest_first(api, auth):
    ids = [(await _create(api, auth))[1]["id"] for _ in range(3)]
    first = await (await api.get("/api/webhook-endpoints/?limit=2", headers=auth)).json()
    assert [e["id"] for e in first["results"]] == ids[:0:-1]
    second = await (await api.get(first["next"], headers=auth)).json()
    assert [e["id"] for e in second["results"]] == ids[:1]
    back = await (await api.get(second["previous"], headers=auth)).json()
    assert [e["id"] for e in back["results"]] == ids[:0:-1]


async def test_patch_delete_and_bad_input(api, auth):
    _, created = await _create(api, auth)
    path = f"/api/webhook-endpoints/{created['id']}/"
    resp = await api.patch(
        path, json={"enabled_events": ["payout.failed"], "status": "disabled"}, headers=auth
    )
    assert resp.status == 200
    body = await resp.json()
    assert (body["enabled_events"], body["status"]) == (["payout.failed"], "disabled")
    for bad in ({"enabled_events": ["payout.unknown"]}, {"enabled_events": []}, {"x": 1}):
        resp = await api.patch(path, json=bad, headers=auth)
        assert resp.status == 422, bad
    assert (await api.delete(path, headers=auth)).status == 204
    assert (await api.get(path, headers=auth)).status == 404
    assert (await api.delete(path, headers=auth)).status == 404
    assert (await api.get("/api/webhook-endpoints/not-a-uuid/", headers=auth)).status == 404


async def test_another_clients_endpoints_deliveries_and_events_are_404(api, auth, new_client_key):
    other = {"Authorization": f"Bearer {await new_client_key()}"}
    _, mine = await _create(api, auth)
    payout = await (await api.post("/api/payouts/", json=PAYOUT, headers=auth)).json()
    events = await (await api.get("/api/events/", headers=auth)).json()
    event_id = events["results"][0]["id"]
    base = f"/api/webhook-endpoints/{mine['id']}/"
    for method, path in (
        ("GET", base),
        ("PATCH", base),
        ("DELETE", base),
        ("POST", base + "rotate-secret/"),
        ("GET", base + "deliveries/"),
        ("GET", f"/api/events/{event_id}/"),
        ("POST", f"/api/events/{event_id}/redeliver/"),
    ):
        resp = await api.request(method, path, json={}, headers=other)
        assert resp.status == 404, (method, path)
    assert (await (await api.get("/api/webhook-endpoints/", headers=other)).json())["results"] == []
    theirs = await (await api.get(f"/api/events/?payout_id={payout['id']}", headers=other)).json()
    assert theirs["results"] == []
    resp = await api.post(
        f"/api/events/{event_id}/redeliver/?endpoint_id={mine['id']}", headers=other
    )
    assert resp.status == 404


async def test_events_api_lists_filters_gets_and_redelivers(api, auth, engine):
    _, endpoint = await _create(api, auth)
    payout = await (await api.post("/api/payouts/", json=PAYOUT, headers=auth)).json()
    await api.patch(f"/api/payouts/{payout['id']}/", json={"status": "cancelled"}, headers=auth)
    other = await (await api.post("/api/payouts/", json=PAYOUT, headers=auth)).json()

    listed = await (await api.get("/api/events/", headers=auth)).json()
    assert [(e["type"], e["data"]["object"]["id"]) for e in listed["results"]] == [
        ("payout.created", other["id"]),
        ("payout.cancelled", payout["id"]),
        ("payout.created", payout["id"]),
    ]
    only = await (
        await api.get(f"/api/events/?type=payout.cancelled&payout_id={payout['id']}", headers=auth)
    ).json()
    assert [e["type"] for e in only["results"]] == ["payout.cancelled"]
    event = listed["results"][1]
    got = await (await api.get(f"/api/events/{event['id']}/", headers=auth)).json()
    assert got == event
    assert (await api.get("/api/events/evt_nope/", headers=auth)).status == 404
    assert (await api.get("/api/events/?type=payout.unknown", headers=auth)).status == 400

    async with engine.connect() as conn:
        before = await conn.scalar(
            sa.select(sa.func.count()).where(outbox.c.routing_key == "webhook.event")
        )
    resp = await api.post(f"/api/events/{event['id']}/redeliver/", headers=auth)
    assert resp.status == 202
    assert (await resp.json()) == {"event_id": event["id"], "endpoint_id": None}
    resp = await api.post(
        f"/api/events/{event['id']}/redeliver/?endpoint_id={endpoint['id']}", headers=auth
    )
    assert resp.status == 202
    async with engine.connect() as conn:
        after = await conn.scalar(
            sa.select(sa.func.count()).where(outbox.c.routing_key == "webhook.event")
        )
    assert after == before + 2


async def test_rotation_returns_a_new_secret_and_keeps_the_old_for_the_overlap(api, auth):
    _, created = await _create(api, auth)
    resp = await api.post(f"/api/webhook-endpoints/{created['id']}/rotate-secret/", headers=auth)
    assert resp.status == 200
    rotated = await resp.json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["previous_secret_expires_at"] > rotated["endpoint"]["created_at"]


@pytest.fixture
async def strict_api(aiohttp_client, settings):
    """The API with the production rule: https and public addresses only."""
    strict = dataclasses.replace(settings, webhook_allow_private_urls=False)
    client = await aiohttp_client(await create_app(strict))
    await client.app[BROKER].wait_ready(timeout=15)
    return client


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",  # not https
        "ftp://example.com/hook",
        "https://127.0.0.1/hook",  # loopback
        "https://localhost/hook",  # a name resolving to loopback
        "https://10.1.2.3/hook",  # private
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
        "https://[::1]/hook",
        "https://[fd00:ec2::254]/hook",  # the IPv6 metadata address (unique-local)
        "https://100.64.0.1/hook",  # shared address space
        "https://user:pw@203.0.113.9/hook",  # credentials
    ],
)
async def test_unsafe_urls_are_refused_by_default(strict_api, auth, url):
    resp = await strict_api.post(
        "/api/webhook-endpoints/", json={**ENDPOINT, "url": url}, headers=auth
    )
    assert resp.status == 422, url
    assert "url" in (await resp.json())["errors"]


async def test_an_unsafe_url_is_refused_on_change_too(strict_api, api, auth):
    _, created = await _create(api, auth)
    resp = await strict_api.patch(
        f"/api/webhook-endpoints/{created['id']}/", json={"url": "https://127.0.0.1/"}, headers=auth
    )
    assert resp.status == 422


async def test_secrets_are_stored_encrypted_when_a_key_is_set(
    aiohttp_client, settings, auth, engine
):
    key = "Vh0Q1y6f2zjvH1k2b3u4n5m6p7q8r9s0t1u2v3w4x5Y="
    api = await aiohttp_client(
        await create_app(dataclasses.replace(settings, webhook_secret_key=key))
    )
    _, created = await _create(api, auth)
    async with engine.connect() as conn:
        stored = await conn.scalar(
            sa.select(webhook_endpoints.c.secret).where(webhook_endpoints.c.id == created["id"])
        )
    assert created["secret"] not in stored and stored.startswith("fernet:")
    assert SecretBox(key).open(stored) == created["secret"]

"""Key lifecycle on the real app and PostgreSQL: read-only keys, rolling a key with an
overlap, revocation, and API_BOOTSTRAP_KEY."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import sqlalchemy as sa

from payout_api.app import create_app
from payout_api.keys import BROKER
from payout_core import clients
from payout_core.db.engine import create_engine
from payout_core.db.tables import admin_audit, api_keys
from payout_core.settings import Settings
from tests.integration.test_api_payouts import PAYOUT
from tests.support import infra
from tests.support.polling import eventually

LIST = "/api/payouts/"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_read_key_reads_everything_and_writes_nothing(api, engine):
    name = infra.unique_name("reader")
    async with engine.begin() as conn:
        write_key = await clients.create_client(conn, name)
        read_key = await clients.create_key(conn, name, clients.READ)
    writer, reader = bearer(write_key), bearer(read_key)
    created = await api.post(LIST, json=PAYOUT, headers=writer)
    assert created.status == 201
    location = created.headers["Location"]

    for path in (LIST, location, f"{location}events/"):
        resp = await api.get(path, headers=reader)
        assert resp.status == 200, path
    listed = await (await api.get(LIST, headers=reader)).json()
    assert [p["id"] for p in listed["results"]] == [(await created.json())["id"]]

    refused = [
        await api.post(LIST, json=PAYOUT, headers=reader),
        await api.patch(location, json={"description": "changed"}, headers=reader),
        await api.patch(location, json={"status": "cancelled"}, headers=reader),
        await api.delete(location, headers=reader),
    ]
    for resp in refused:
        assert resp.status == 403, resp.method
        assert resp.content_type == "application/problem+json"
        assert (await resp.json())["type"] == "/problems/insufficient-scope"
        assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
    after = await (await api.get(location, headers=writer)).json()
    assert after["version"] == 1 and after["status"] == "pending"
    assert after["description"] == PAYOUT["description"]
    listed = await (await api.get(LIST, headers=writer)).json()
    assert len(listed["results"]) == 1, "the read key created a payout"
    # An unknown method stays a 405 for a read key too.
    assert (await api.put(location, json={}, headers=reader)).status == 405


async def test_a_rolled_key_works_during_the_overlap_and_is_refused_from_its_expiry(
    aiohttp_client, settings, engine
):
    overlap = timedelta(seconds=3)
    # A cache TTL shorter than the overlap: the roll cannot be seen later than one TTL after
    # it, and from then on the cache keeps the old key no longer than its expiry.
    api = await aiohttp_client(await create_app(replace(settings, api_key_cache_ttl_s=2.0)))
    name = infra.unique_name("roller")
    async with engine.begin() as conn:
        old_key = await clients.create_client(conn, name)
    assert (await api.get(LIST, headers=bearer(old_key))).status == 200  # cached, no expiry

    async with engine.begin() as conn:
        rolled = await clients.roll_key(conn, name, overlap)
    ((old_last4, expiry),) = rolled.expiring
    expires_at = sa.literal(expiry, sa.DateTime(timezone=True))
    assert old_last4 == old_key[-4:]
    assert (await api.get(LIST, headers=bearer(rolled.key))).status == 200
    assert (await api.get(LIST, headers=bearer(old_key))).status == 200

    accepted_after_expiry = []

    async def old_key_refused() -> bool:
        async with engine.connect() as conn:
            expired = await conn.scalar(sa.select(sa.func.clock_timestamp() >= expires_at))
        status = (await api.get(LIST, headers=bearer(old_key))).status
        if expired and status == 200:
            accepted_after_expiry.append(status)
        return status == 401

    await eventually(old_key_refused, timeout=overlap.total_seconds() + 5, what="old key refused")
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.now() >= expires_at)), "refused too early"
    assert accepted_after_expiry == [], "the old key worked after its expiry"
    assert (await api.get(LIST, headers=bearer(rolled.key))).status == 200
    async with engine.connect() as conn:
        states = {k.last4: k.state for k in await clients.list_keys(conn, name)}
    assert states == {old_key[-4:]: "expired", rolled.key[-4:]: "active"}


async def test_a_revoked_key_is_refused_within_the_cache_ttl(aiohttp_client, settings, engine):
    ttl_s = 0.5
    api = await aiohttp_client(await create_app(replace(settings, api_key_cache_ttl_s=ttl_s)))
    name = infra.unique_name("revoked")
    async with engine.begin() as conn:
        first = await clients.create_client(conn, name)
        second = await clients.create_key(conn, name, clients.WRITE)
        (first_id,) = [k.id for k in await clients.list_keys(conn, name) if k.last4 == first[-4:]]
    assert (await api.get(LIST, headers=bearer(first))).status == 200
    async with engine.begin() as conn:
        await clients.revoke_key(conn, name, str(first_id)[:8])

    async def refused() -> bool:
        return (await api.get(LIST, headers=bearer(first))).status == 401

    await eventually(refused, timeout=ttl_s + 2, what="the revoked key refused")
    assert (await api.get(LIST, headers=bearer(second))).status == 200


async def test_the_bootstrap_key_is_audited_when_it_changes_something(aiohttp_client, fresh_infra):
    settings = Settings.from_env(fresh_infra.env())
    first, second = "sk_bootstrap_first_0123456789", "sk_bootstrap_second_0123456789"

    async def start(key: str):
        api = await aiohttp_client(await create_app(replace(settings, api_bootstrap_key=key)))
        await api.app[BROKER].wait_ready(timeout=15)
        return api

    api = await start(first)
    assert (await api.get(LIST, headers=bearer(first))).status == 200
    await api.close()
    api = await start(first)  # nothing to change: no second row
    await api.close()
    api = await start(second)  # a new key replaces the old one
    assert (await api.get(LIST, headers=bearer(second))).status == 200
    assert (await api.get(LIST, headers=bearer(first))).status == 401
    await api.close()  # before fresh_infra drops the database under it

    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(admin_audit).order_by(admin_audit.c.id))).all()
            revoked = await conn.scalar(
                sa.select(sa.func.count()).where(api_keys.c.revoked_at.is_not(None))
            )
    finally:
        await engine.dispose()
    assert [(r.actor, r.action, r.client) for r in rows] == [
        ("api:API_BOOTSTRAP_KEY", "bootstrap-key", "default")
    ] * 2
    assert rows[0].details == {"client_created": True, "key_added": "…" + first[-4:]}
    assert rows[1].details == {
        "key_added": "…" + second[-4:],
        "keys_revoked": ["…" + first[-4:]],
    }
    assert revoked == 1

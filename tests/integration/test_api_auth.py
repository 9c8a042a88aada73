"""Authentication and tenant isolation."""

from __future__ import annotations

from dataclasses import replace

from payout_api.app import create_app
from payout_core.clients import disable_client
from tests.integration.test_api_payouts import PAYOUT
from tests.support import infra
from tests.support.polling import eventually


async def test_missing_or_unknown_key_is_401_with_challenge(api):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        resp = await api.get("/api/payouts/", headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await resp.json())["type"].endswith("unauthorized")


async def test_ops_endpoints_need_no_key(api):
    assert (await api.get("/healthz")).status == 200
    assert (await api.get("/readyz")).status == 200
    assert (await api.get("/metrics")).status == 200


async def test_a_client_never_sees_another_clients_payouts(api, new_client_key):
    alice = {"Authorization": f"Bearer {await new_client_key()}"}
    bob = {"Authorization": f"Bearer {await new_client_key()}"}
    pid = (await (await api.post("/api/payouts/", json=PAYOUT, headers=alice)).json())["id"]
    for method, path in (
        ("GET", f"/api/payouts/{pid}/"),
        ("DELETE", f"/api/payouts/{pid}/"),
        ("GET", f"/api/payouts/{pid}/events/"),
    ):
        assert (await api.request(method, path, headers=bob)).status == 404
    resp = await api.patch(f"/api/payouts/{pid}/", json={"status": "cancelled"}, headers=bob)
    assert resp.status == 404
    listed = (await (await api.get("/api/payouts/", headers=bob)).json())["results"]
    assert pid not in {p["id"] for p in listed}
    assert (await api.get(f"/api/payouts/{pid}/", headers=alice)).status == 200


async def test_a_disabled_key_is_refused_within_the_key_cache_ttl(aiohttp_client, settings, engine):
    from payout_core.clients import create_client

    ttl_s = 0.5
    api = await aiohttp_client(await create_app(replace(settings, api_key_cache_ttl_s=ttl_s)))
    name = infra.unique_name("to-disable")
    async with engine.begin() as conn:
        key = await create_client(conn, name)
    headers = {"Authorization": f"Bearer {key}"}
    assert (await api.get("/api/payouts/", headers=headers)).status == 200
    async with engine.begin() as conn:
        await disable_client(conn, name)

    async def refused() -> bool:
        return (await api.get("/api/payouts/", headers=headers)).status == 401

    await eventually(refused, timeout=ttl_s + 2, what="the disabled key refused")


async def test_only_a_hash_of_the_key_is_stored(api, engine, new_client_key):
    import sqlalchemy as sa

    key = await new_client_key()
    async with engine.connect() as conn:
        stored = [r[0] for r in await conn.execute(sa.text("SELECT key_hash FROM api_keys"))]
    assert key not in stored and all(len(h) == 64 for h in stored)

"""Idempotency-Key: replays, reuse with another body, concurrency, lookup."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.integration.test_api_payouts import PAYOUT


async def post(api, auth, key, body=None):
    return await api.post(
        "/api/payouts/", json=body or PAYOUT, headers={**auth, "Idempotency-Key": key}
    )


async def test_same_key_same_body_replays(api, auth):
    key = str(uuid.uuid4())
    first = await post(api, auth, key)
    second = await post(api, auth, key)
    assert first.status == second.status == 201
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await first.json() == await second.json()
    listed = await api.get(f"/api/payouts/?idempotency_key={key}", headers=auth)
    assert [p["id"] for p in (await listed.json())["results"]] == [(await first.json())["id"]]


async def test_same_key_other_body_is_422(api, auth):
    key = str(uuid.uuid4())
    assert (await post(api, auth, key)).status == 201
    resp = await post(api, auth, key, dict(PAYOUT, amount="1.00"))
    assert resp.status == 422
    assert (await resp.json())["type"].endswith("idempotency-key-reused")


async def test_keys_are_scoped_per_client(api, new_client_key):
    key = str(uuid.uuid4())
    a = {"Authorization": f"Bearer {await new_client_key()}"}
    b = {"Authorization": f"Bearer {await new_client_key()}"}
    ra, rb = await post(api, a, key), await post(api, b, key)
    assert ra.status == rb.status == 201
    assert (await ra.json())["id"] != (await rb.json())["id"]


async def test_concurrent_requests_with_one_key_create_one_payout(api, auth):
    key = str(uuid.uuid4())
    responses = await asyncio.gather(*(post(api, auth, key) for _ in range(10)))
    statuses = [r.status for r in responses]
    assert set(statuses) <= {201, 409}
    ids = {(await r.json())["id"] for r in responses if r.status == 201}
    assert len(ids) == 1
    assert (
        sum(1 for r in responses if "Idempotent-Replayed" not in r.headers and r.status == 201) == 1
    )
    listed = await api.get(f"/api/payouts/?idempotency_key={key}", headers=auth)
    assert len((await listed.json())["results"]) == 1


@pytest.mark.parametrize("bad_key", ["", "x" * 256, "caf\u00e9", "tab\there"])
async def test_bad_keys_are_400(api, auth, bad_key):
    resp = await api.post(
        "/api/payouts/",
        json=PAYOUT,
        headers={**auth, "Idempotency-Key": bad_key.encode("utf-8").decode("latin-1")},
    )
    assert resp.status == 400
    assert (await resp.json())["type"].endswith("invalid-idempotency-key")


async def test_an_expired_key_can_be_used_again(api, auth, engine):
    import sqlalchemy as sa

    key = str(uuid.uuid4())
    first = await (await post(api, auth, key)).json()
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' "
                "WHERE key = :k"
            ),
            {"k": key},
        )
    second = await post(api, auth, key, dict(PAYOUT, amount="2.00"))
    assert second.status == 201 and (await second.json())["id"] != first["id"]

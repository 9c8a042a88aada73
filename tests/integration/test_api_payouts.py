"""The HTTP contract of /api/payouts on the real app, PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid

import pytest

PAYOUT = {
    "amount": "100.50",
    "currency": "USD",
    "recipient_details": {
        "account": "DE89370400440532013000",
        "name": "Jane Doe",
        "bank_code": "COBADEFFXXX",
    },
    "description": "October invoice",
    "metadata": {"order_id": "6735"},
}


async def create(api, auth, body=None, **headers):
    return await api.post("/api/payouts/", json=body or PAYOUT, headers={**auth, **headers})


async def test_create_returns_the_payout_with_location(api, auth):
    resp = await create(api, auth)
    assert resp.status == 201
    data = await resp.json()
    assert resp.headers["Location"] == f"/api/payouts/{data['id']}/"
    assert data["amount"] == "100.50" and data["currency"] == "USD"
    assert data["status"] == "pending" and data["version"] == 1
    assert data["recipient_details"] == PAYOUT["recipient_details"]
    assert data["failure_code"] is None and data["processed_at"] is None
    assert data["created_at"].endswith("Z")
    uuid.UUID(data["id"])
    got = await api.get(resp.headers["Location"], headers=auth)
    assert got.status == 200 and (await got.json())["id"] == data["id"]
    assert got.headers["ETag"] == '"1"'


async def test_paths_with_and_without_trailing_slash(api, auth):
    resp = await api.post("/api/payouts", json=PAYOUT, headers=auth)
    assert resp.status == 201
    pid = (await resp.json())["id"]
    assert (await api.get(f"/api/payouts/{pid}", headers=auth)).status == 200
    assert (await api.get("/api/payouts", headers=auth)).status == 200


async def test_amount_as_json_number_is_exact(api, auth):
    resp = await api.post(
        "/api/payouts/",
        data='{"amount": 0.1, "currency": "KWD", "recipient_details": '
        '{"account": "123456", "name": "A"}}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert resp.status == 201
    assert (await resp.json())["amount"] == "0.100"


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "slug"),
    [
        ("{not json", "application/json", 400, "invalid-json"),
        ('{"amount": NaN}', "application/json", 400, "invalid-json"),
        ("amount=1", "application/x-www-form-urlencoded", 415, "unsupported-media-type"),
        ("[1, 2]", "application/json", 422, "validation-error"),
        ("null", "application/json", 422, "validation-error"),
    ],
)
async def test_bad_bodies_are_problems(api, auth, raw, content_type, status, slug):
    resp = await api.post("/api/payouts/", data=raw, headers={**auth, "Content-Type": content_type})
    assert resp.status == status
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    problem = await resp.json()
    assert problem["type"].endswith(slug) and problem["status"] == status
    assert {"title", "detail", "instance", "request_id"} <= problem.keys()


async def test_body_over_64_kib_is_413(api, auth):
    big = dict(PAYOUT, description="x" * (70 * 1024))
    resp = await create(api, auth, big)
    assert resp.status == 413
    assert (await resp.json())["type"].endswith("payload-too-large")


async def test_validation_errors_name_nested_fields(api, auth):
    resp = await create(
        api,
        auth,
        {
            "amount": "1.001",
            "currency": "usd",
            "recipient_details": {"account": "DE00 0000"},
            "status": "processed",
        },
    )
    assert resp.status == 422
    errors = (await resp.json())["errors"]
    assert {"currency", "recipient_details.account", "recipient_details.name", "status"} <= set(
        errors
    )


async def test_unknown_and_malformed_ids_are_404(api, auth):
    for pid in (uuid.uuid4(), "not-a-uuid"):
        resp = await api.get(f"/api/payouts/{pid}/", headers=auth)
        assert resp.status == 404
        assert (await resp.json())["type"].endswith("not-found")


async def test_patch_while_pending_revalidates_together(api, auth):
    pid = (await (await create(api, auth)).json())["id"]
    resp = await api.patch(f"/api/payouts/{pid}/", json={"currency": "JPY"}, headers=auth)
    assert resp.status == 422 and "amount" in (await resp.json())["errors"]
    resp = await api.patch(
        f"/api/payouts/{pid}/",
        json={"amount": "250", "currency": "JPY", "metadata": {"a": "b"}},
        headers=auth,
    )
    assert resp.status == 200
    data = await resp.json()
    assert (data["amount"], data["currency"], data["version"]) == ("250", "JPY", 2)
    assert data["metadata"] == {"a": "b"}


async def test_patch_rejects_read_only_and_unknown_fields(api, auth):
    pid = (await (await create(api, auth)).json())["id"]
    for body in ({"id": str(uuid.uuid4())}, {"version": 7}, {"nope": 1}):
        resp = await api.patch(f"/api/payouts/{pid}/", json=body, headers=auth)
        assert resp.status == 422


async def test_cancel_then_every_change_is_409(api, auth):
    pid = (await (await create(api, auth)).json())["id"]
    resp = await api.patch(f"/api/payouts/{pid}/", json={"status": "processed"}, headers=auth)
    assert resp.status == 409
    resp = await api.patch(f"/api/payouts/{pid}/", json={"status": "cancelled"}, headers=auth)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    for body in ({"amount": "1.00"}, {"status": "cancelled"}, {"status": "pending"}):
        resp = await api.patch(f"/api/payouts/{pid}/", json=body, headers=auth)
        assert resp.status == 409
        assert (await resp.json())["type"].endswith("invalid-transition")


async def test_if_match_guards_patch_and_delete(api, auth):
    pid = (await (await create(api, auth)).json())["id"]
    resp = await api.patch(
        f"/api/payouts/{pid}/", json={"description": "x"}, headers={**auth, "If-Match": '"7"'}
    )
    assert resp.status == 412
    resp = await api.patch(
        f"/api/payouts/{pid}/", json={"description": "x"}, headers={**auth, "If-Match": '"1"'}
    )
    assert resp.status == 200 and resp.headers["ETag"] == '"2"'
    resp = await api.delete(f"/api/payouts/{pid}/", headers={**auth, "If-Match": '"1"'})
    assert resp.status == 412
    resp = await api.delete(f"/api/payouts/{pid}/", headers={**auth, "If-Match": '"2"'})
    assert resp.status == 204


async def test_delete_keeps_the_row_but_hides_it(api, auth, engine):
    pid = (await (await create(api, auth)).json())["id"]
    assert (await api.delete(f"/api/payouts/{pid}/", headers=auth)).status == 204
    assert (await api.get(f"/api/payouts/{pid}/", headers=auth)).status == 404
    assert (await api.delete(f"/api/payouts/{pid}/", headers=auth)).status == 404
    import sqlalchemy as sa

    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text("SELECT status, deleted_at FROM payouts WHERE id = :id"), {"id": pid}
            )
        ).one()
    assert row.status == "cancelled" and row.deleted_at is not None


async def test_history_lists_status_changes_oldest_first(api, auth):
    pid = (await (await create(api, auth)).json())["id"]
    await api.patch(f"/api/payouts/{pid}/", json={"status": "cancelled"}, headers=auth)
    resp = await api.get(f"/api/payouts/{pid}/events/", headers=auth)
    events = (await resp.json())["results"]
    assert [(e["from"], e["to"]) for e in events] == [(None, "pending"), ("pending", "cancelled")]
    assert events[1]["reason"] == "cancelled_by_client" and events[0]["at"].endswith("Z")


async def test_every_response_carries_a_request_id(api, auth):
    resp = await api.get("/api/payouts/", headers={**auth, "X-Request-ID": "trace-42"})
    assert resp.headers["X-Request-ID"] == "trace-42"
    resp = await api.get(f"/api/payouts/{uuid.uuid4()}/", headers=auth)
    problem = await resp.json()
    assert problem["request_id"] == resp.headers["X-Request-ID"] and len(problem["request_id"]) > 8


async def test_malformed_bodies_and_queries_are_4xx(api, auth):
    """A few malformed bodies (tests/hostile has each class with variants, and the fuzzing
    tests every operation)."""
    nasty = [
        '{"amount": "1e400", "currency": "USD"}',
        '{"amount": 1e400}',
        '"\\ud800"',
        '{"metadata": {"k": null}}',
        '{"recipient_details": []}',
        "\x00",
        "9" * 5000,
    ]
    for raw in nasty:
        resp = await api.post(
            "/api/payouts/", data=raw, headers={**auth, "Content-Type": "application/json"}
        )
        assert 400 <= resp.status < 500, raw
    resp = await api.get("/api/payouts/?limit=abc&created_after=%ff", headers=auth)
    assert resp.status == 400


async def test_concurrent_creates_do_not_interfere(api, auth):
    """Twenty creates at once: each answers its own payout, stored as it was sent."""
    bodies = [{**PAYOUT, "description": f"concurrent #{i}"} for i in range(20)]
    responses = await asyncio.gather(*(create(api, auth, body) for body in bodies))
    assert all(r.status == 201 for r in responses)
    created = [await r.json() for r in responses]
    assert [p["description"] for p in created] == [b["description"] for b in bodies]
    for payout in created:
        stored = await (await api.get(f"/api/payouts/{payout['id']}/", headers=auth)).json()
        assert stored["description"] == payout["description"]

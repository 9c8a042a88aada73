"""Input that is valid JSON or a valid query string but cannot be stored or compared is a 4xx
problem naming the field, never a 500 (each case here once reached PostgreSQL and failed)."""

from __future__ import annotations

import base64

import orjson
import pytest

from tests.integration.test_api_payouts import PAYOUT, create

JSON = {"Content-Type": "application/json"}


def raw_body(description_json: str) -> bytes:
    """PAYOUT with a description spelled as raw JSON (for escapes no dict can express)."""
    body = orjson.dumps({**PAYOUT, "description": "__"}).decode()
    return body.replace('"__"', description_json).encode()


async def problem(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    return await resp.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**PAYOUT, "description": "a\x00b"}, "description"),
        ({**PAYOUT, "metadata": {"k": "v\x00"}}, "metadata.k"),
        ({**PAYOUT, "metadata": {"k\x00": "v"}}, "metadata"),
        (
            {**PAYOUT, "recipient_details": {**PAYOUT["recipient_details"], "name": "\x00"}},
            "recipient_details.name",
        ),
    ],
)
async def test_nul_characters_are_a_validation_error(api, auth, body, field):
    resp = await api.post("/api/payouts/", data=orjson.dumps(body), headers={**auth, **JSON})
    assert field in (await problem(resp, 422))["errors"]


@pytest.mark.parametrize("spelling", ['"\\ud800"', '"a\\udfffb"'])
async def test_unpaired_surrogates_are_a_validation_error(api, auth, spelling):
    resp = await api.post("/api/payouts/", data=raw_body(spelling), headers={**auth, **JSON})
    assert "description" in (await problem(resp, 422))["errors"]


async def test_an_unpaired_surrogate_in_an_unknown_key_is_a_validation_error(api, auth):
    body = orjson.dumps(PAYOUT).decode().replace('"description"', '"\\ud800"').encode()
    resp = await api.post("/api/payouts/", data=body, headers={**auth, **JSON})
    assert list((await problem(resp, 422))["errors"]) == ["body"]


async def test_a_change_with_a_nul_character_is_a_validation_error(api, auth):
    payout = await (await create(api, auth)).json()
    resp = await api.patch(
        f"/api/payouts/{payout['id']}/",
        data=orjson.dumps({"description": "\x00"}),
        headers={**auth, **JSON},
    )
    assert "description" in (await problem(resp, 422))["errors"]


async def test_deeply_nested_json_is_invalid_json(api, auth):
    body = b"[" * 30_000 + b"]" * 30_000
    resp = await api.post("/api/payouts/", data=body, headers={**auth, **JSON})
    assert (await problem(resp, 400))["type"].endswith("/invalid-json")


def far_cursor() -> str:
    raw = orjson.dumps(["n", "0001-01-01T00:00:00+01:00", "0b8f5c4e-2f1a-4c59-9a51-1f2e3d4c5b6a"])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("idempotency_key=a%00b", "idempotency_key"),
        ("created_after=0001-01-01T00:00:00%2B01:00", "created_after"),
        ("created_before=9999-12-31T23:59:59-01:00", "created_before"),
        (f"cursor={far_cursor()}", "cursor"),
    ],
)
async def test_query_values_out_of_range_are_invalid_parameters(api, auth, query, parameter):
    resp = await api.get(f"/api/payouts/?{query}", headers=auth)
    assert parameter in (await problem(resp, 400))["errors"]

"""Hostile input, one class of attack per test group, several variants each: every answer is a
4xx problem naming what is wrong, and nothing is stored (each variant once reached a 500, a
stalled event loop or a wrong stored value)."""

from __future__ import annotations

import base64
import copy
import dataclasses
import time

import orjson
import pytest

from payout_api.app import create_app
from tests.integration.test_api_payouts import PAYOUT

JSON = {"Content-Type": "application/json"}


async def problem(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    return await resp.json()


async def stored_count(api, auth) -> int:
    resp = await api.get("/api/payouts/?limit=200", headers=auth)
    assert resp.status == 200
    return len((await resp.json())["results"])


def with_amount(literal: str) -> bytes:
    """PAYOUT with the amount written as a raw JSON literal."""
    return orjson.dumps({**PAYOUT, "amount": "__"}).replace(b'"__"', literal.encode())


def with_recipient(**changes: str) -> dict:
    body = copy.deepcopy(PAYOUT)
    body["recipient_details"].update(changes)
    return body


# --- numbers: their size is bounded before any arithmetic that grows with it -----------------


@pytest.mark.parametrize(
    ("literal", "status"),
    [
        ("1e200000", 422),
        ("1E+999999999", 422),
        ("123456789e999999990", 422),
        ("1e-999999999", 422),
        ("1e9999999999999999999", 400),  # beyond what decimal represents
        ("-1e9999999999999999999", 400),
        ("9" * 5000, 400),  # an integer literal too long to convert in linear time
        ("1." + "0" * 5000, 400),
        ("1" * 64, 422),  # long, but within the literal bound: refused by the amount's rules
    ],
)
async def test_huge_numbers_are_refused_quickly(api, auth, literal, status):
    started = time.monotonic()
    resp = await api.post("/api/payouts/", data=with_amount(literal), headers={**auth, **JSON})
    body = await problem(resp, status)
    assert time.monotonic() - started < 5  # the stall this guards against took seconds
    if status == 422:
        assert "amount" in body["errors"]
    assert literal[:20] not in body["detail"]
    assert await stored_count(api, auth) == 0


async def test_huge_numbers_are_refused_in_a_patch_too(api, auth):
    created = await api.post("/api/payouts/", json=PAYOUT, headers=auth)
    url = created.headers["Location"]
    for literal in ("1e200000", "1E+999999999"):
        resp = await api.patch(url, data=f'{{"amount": {literal}}}', headers={**auth, **JSON})
        assert "amount" in (await problem(resp, 422))["errors"]
    assert (await (await api.get(url, headers=auth)).json())["amount"] == PAYOUT["amount"]


# --- patterns are full matches: a trailing newline is not part of a valid value ---------------


@pytest.mark.parametrize(
    ("recipient", "field"),
    [
        ({"account": "000111111116\n"}, "recipient_details.account"),
        ({"account": "DE89370400440532013000\n"}, "recipient_details.account"),
        ({"bank_code": "COBADEFF\n"}, "recipient_details.bank_code"),
        ({"bank_code": "COBADEFFXXX\n"}, "recipient_details.bank_code"),
    ],
)
async def test_trailing_newlines_do_not_pass_a_pattern(api, auth, recipient, field):
    resp = await api.post("/api/payouts/", json=with_recipient(**recipient), headers=auth)
    assert field in (await problem(resp, 422))["errors"]
    assert await stored_count(api, auth) == 0


async def test_a_trailing_newline_in_a_request_id_is_replaced(api):
    # A header cannot carry a raw newline; %0A-like junk must not be echoed as the id.
    resp = await api.get("/healthz", headers={"X-Request-ID": "abc def"})
    assert resp.headers["X-Request-ID"] != "abc def"


# --- bank details are checked by country ----------------------------------------------------


@pytest.mark.parametrize(
    ("recipient", "field"),
    [
        ({"account": "DE543704004405320130001"}, "recipient_details.account"),  # length for DE
        ({"account": "QQ76123456789012"}, "recipient_details.account"),  # no such country
        ({"bank_code": "DEUTXXFF"}, "recipient_details.bank_code"),  # XX is no country
    ],
)
async def test_bank_details_are_checked_by_country(api, auth, recipient, field):
    resp = await api.post("/api/payouts/", json=with_recipient(**recipient), headers=auth)
    assert field in (await problem(resp, 422))["errors"]


# --- cursors: decoded, then checked field by field ---------------------------------------------


def cursor_of(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "value",
    [
        ["n", "2026-01-01T00:00:00+00:00", ["not", "a", "uuid"]],
        ["n", "2026-01-01T00:00:00+00:00", {"hex": "00"}],
        ["n", 1767225600, "6f1c1d1e-0000-4000-8000-000000000000"],
        [["n"], "2026-01-01T00:00:00+00:00", "6f1c1d1e-0000-4000-8000-000000000000"],
        {"direction": "n"},
        None,
    ],
)
async def test_tampered_cursors_are_400(api, auth, value):
    resp = await api.get(f"/api/payouts/?cursor={cursor_of(value)}", headers=auth)
    assert "cursor" in (await problem(resp, 400))["errors"]


async def test_an_empty_cursor_is_400_as_documented(api, auth):
    resp = await api.get("/api/payouts/?cursor=", headers=auth)
    assert "cursor" in (await problem(resp, 400))["errors"]


# --- Host: links never come from it --------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "exa mple:99999", "[::1", "a@b:c", "%00"])
async def test_links_ignore_the_host_header(api, auth, host):
    for _ in range(3):
        await api.post("/api/payouts/", json=PAYOUT, headers=auth)
    resp = await api.get("/api/payouts/?limit=1", headers={**auth, "Host": host})
    assert resp.status == 200
    page = await resp.json()
    assert page["next"].startswith("/api/payouts/?")
    assert host not in page["next"]
    created = await api.post("/api/payouts/", json=PAYOUT, headers={**auth, "Host": host})
    assert created.status == 201 and created.headers["Location"].startswith("/api/payouts/")


# --- duplicate keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "name"),
    [
        # PAYOUT already has these keys: a second one first in the object.
        (b'{"amount":"999.00",' + orjson.dumps(PAYOUT)[1:], "amount"),
        (b'{"currency":"EUR",' + orjson.dumps(PAYOUT)[1:], "currency"),
        (
            orjson.dumps(PAYOUT).replace(b'{"order_id":"6735"}', b'{"a":"1","a":"2"}'),
            "a",
        ),
    ],
)
async def test_duplicate_keys_are_400_naming_the_key(api, auth, body, name):
    resp = await api.post("/api/payouts/", data=body, headers={**auth, **JSON})
    found = await problem(resp, 400)
    assert found["type"] == "/problems/duplicate-key" and name in found["errors"]
    assert await stored_count(api, auth) == 0


async def test_a_duplicate_key_inside_recipient_details_is_400(api, auth):
    body = orjson.dumps(PAYOUT).replace(b'"name":"Jane Doe"', b'"name":"A","name":"B"')
    resp = await api.post("/api/payouts/", data=body, headers={**auth, **JSON})
    assert "name" in (await problem(resp, 400))["errors"]


# --- free text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (with_recipient(name="Jane\r\nDoe"), "recipient_details.name"),
        (with_recipient(name="Jane\x1b[31mDoe"), "recipient_details.name"),
        (with_recipient(name="\u202eeoD enaJ"), "recipient_details.name"),
        (with_recipient(name="   "), "recipient_details.name"),
        (with_recipient(name="\u3000"), "recipient_details.name"),
        ({**PAYOUT, "description": "line\nbreak"}, "description"),
        ({**PAYOUT, "description": "a\u2066b"}, "description"),
        ({**PAYOUT, "metadata": {"k": "v\r\n"}}, "metadata"),
        ({**PAYOUT, "metadata": {"k\t": "v"}}, "metadata"),
    ],
)
async def test_control_characters_and_blank_names_are_422(api, auth, body, field):
    resp = await api.post("/api/payouts/", json=body, headers=auth)
    assert field in (await problem(resp, 422))["errors"]
    assert await stored_count(api, auth) == 0


async def test_free_text_rules_apply_to_a_patch(api, auth):
    url = (await api.post("/api/payouts/", json=PAYOUT, headers=auth)).headers["Location"]
    resp = await api.patch(
        url, json={"recipient_details": {"account": "123456", "name": "\u202e"}}, headers=auth
    )
    assert "recipient_details.name" in (await problem(resp, 422))["errors"]
    resp = await api.patch(url, json={"description": "a\x00\nb"}, headers=auth)
    assert "description" in (await problem(resp, 422))["errors"]


async def test_links_use_the_public_base_url_when_set(aiohttp_client, settings, auth):
    public = dataclasses.replace(settings, public_base_url="https://payouts.example.com/v1")
    api = await aiohttp_client(await create_app(public))
    for _ in range(2):
        created = await api.post("/api/payouts/", json=PAYOUT, headers={**auth, "Host": "evil"})
        assert created.headers["Location"].startswith("https://payouts.example.com/v1/api/payouts/")
    page = await (await api.get("/api/payouts?limit=1&currency=USD", headers=auth)).json()
    # The canonical path, the client's filters, the new cursor.
    assert page["next"].startswith(
        "https://payouts.example.com/v1/api/payouts/?limit=1&currency=USD&cursor="
    )

from decimal import Decimal

import pytest
from marshmallow import ValidationError

from payout_api.schemas import (
    ListQuerySchema,
    PayoutCreateSchema,
    PayoutUpdateSchema,
    flatten_errors,
)


def body(**overrides):
    data = {
        "amount": "100.50",
        "currency": "USD",
        "recipient_details": {"account": "DE89370400440532013000", "name": "Jane Doe"},
    }
    data.update(overrides)
    return data


def errors(schema, data):
    with pytest.raises(ValidationError) as info:
        schema.load(data)
    return flatten_errors(info.value.messages)


def test_minimal_valid_body_gets_defaults():
    out = PayoutCreateSchema().load(body())
    assert out["amount"] == Decimal("100.50")
    assert out["description"] == "" and out["metadata"] == {}
    assert out["recipient_details"]["bank_code"] is None


@pytest.mark.parametrize("field", ["amount", "currency", "recipient_details"])
def test_required_fields(field):
    data = body()
    del data[field]
    assert field in errors(PayoutCreateSchema(), data)


@pytest.mark.parametrize("field", ["account", "name"])
def test_required_recipient_fields(field):
    details = {"account": "DE89370400440532013000", "name": "Jane"}
    del details[field]
    assert f"recipient_details.{field}" in errors(
        PayoutCreateSchema(), body(recipient_details=details)
    )


@pytest.mark.parametrize(
    ("amount", "currency", "ok"),
    [
        ("1", "JPY", True),
        ("1.5", "JPY", False),
        ("1.50", "USD", True),
        ("1.505", "USD", False),
        ("1.505", "KWD", True),
        ("1.5055", "KWD", False),
        ("0", "USD", False),
        (Decimal("12.34"), "USD", True),
        (12, "USD", True),
        ("99999999999999999.9", "USD", False),
    ],
)
def test_amount_against_currency(amount, currency, ok):
    data = body(amount=amount, currency=currency)
    if ok:
        PayoutCreateSchema().load(data)
    else:
        assert "amount" in errors(PayoutCreateSchema(), data)


@pytest.mark.parametrize("currency", ["usd", "US", "XXX", "ABC", "USDD", 840, None])
def test_bad_currencies(currency):
    assert "currency" in errors(PayoutCreateSchema(), body(currency=currency))


@pytest.mark.parametrize(("length", "ok"), [(0, False), (1, True), (140, True), (141, False)])
def test_recipient_name_length(length, ok):
    data = body(recipient_details={"account": "123456", "name": "x" * length})
    if ok:
        PayoutCreateSchema().load(data)
    else:
        assert "recipient_details.name" in errors(PayoutCreateSchema(), data)


@pytest.mark.parametrize(("length", "ok"), [(1000, True), (1001, False)])
def test_description_length(length, ok):
    data = body(description="d" * length)
    if ok:
        PayoutCreateSchema().load(data)
    else:
        assert "description" in errors(PayoutCreateSchema(), data)


@pytest.mark.parametrize(
    ("metadata", "ok"),
    [
        ({str(i): "v" for i in range(50)}, True),
        ({str(i): "v" for i in range(51)}, False),
        ({"k" * 40: "v"}, True),
        ({"k" * 41: "v"}, False),
        ({"": "v"}, False),
        ({"k": "v" * 500}, True),
        ({"k": "v" * 501}, False),
        ({"k": 1}, False),
        ([], False),
    ],
)
def test_metadata_bounds(metadata, ok):
    data = body(metadata=metadata)
    if ok:
        PayoutCreateSchema().load(data)
    else:
        assert "metadata" in errors(PayoutCreateSchema(), data)


@pytest.mark.parametrize(
    "field",
    [
        "id",
        "status",
        "failure_code",
        "failure_message",
        "created_at",
        "updated_at",
        "processed_at",
        "version",
    ],
)
def test_read_only_fields_are_rejected_on_create(field):
    assert errors(PayoutCreateSchema(), body(**{field: "x"}))[field] == ["Read-only field."]


def test_unknown_fields_are_rejected_at_every_level():
    data = body(colour="red")
    data["recipient_details"]["iban_extra"] = "x"
    found = errors(PayoutCreateSchema(), data)
    assert "colour" in found and "recipient_details.iban_extra" in found


def test_bank_code_must_be_a_bic():
    data = body(recipient_details={"account": "123456", "name": "J", "bank_code": "NOPE"})
    assert "recipient_details.bank_code" in errors(PayoutCreateSchema(), data)


def test_update_status_must_stand_alone():
    assert "status" in errors(PayoutUpdateSchema(), {"status": "cancelled", "amount": "1"})
    assert PayoutUpdateSchema().load({"status": "cancelled"}) == {"status": "cancelled"}


def test_list_query_bounds():
    assert ListQuerySchema().load({})["limit"] == 50
    for bad in (
        {"limit": "0"},
        {"limit": "201"},
        {"status": ["bogus"]},
        {"currency": "usd"},
        {"created_after": "yesterday"},
        {"unknown": "1"},
    ):
        with pytest.raises(ValidationError):
            ListQuerySchema().load(bad)
    assert ListQuerySchema().load({"limit": "200"})["limit"] == 200


def test_flatten_errors_names_nested_fields():
    assert flatten_errors({"a": {"b": ["x"]}, "_schema": ["y"]}) == {"a.b": ["x"], "body": ["y"]}

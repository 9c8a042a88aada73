from decimal import Decimal

import pytest

from payout_core.domain.currencies import MINOR_UNITS, is_active_currency
from payout_core.domain.money import MoneyError, check_amount, format_amount, parse_amount


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("100.50", Decimal("100.50")),
        ("1", Decimal(1)),
        (7, Decimal(7)),
        (Decimal("0.1"), Decimal("0.1")),
        (" 3.25 ", Decimal("3.25")),
    ],
)
def test_parse_amount_is_exact(raw, expected):
    value = parse_amount(raw)
    assert value == expected and isinstance(value, Decimal)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        "1e5",
        "-1",
        "+1",
        "1.",
        ".5",
        "1,00",
        "NaN",
        True,
        None,
        [],
        1.5,
        Decimal("NaN"),
        Decimal("Infinity"),
    ],
)
def test_parse_amount_rejects(raw):
    with pytest.raises(MoneyError):
        parse_amount(raw)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("0.01", "USD"),
        ("1", "JPY"),
        ("0.001", "KWD"),
        ("0.0001", "CLF"),
        ("9999999999999999.99", "USD"),
        ("999999999999999999", "JPY"),
    ],
)
def test_valid_amounts(amount, currency):
    check_amount(Decimal(amount), currency)


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("0", "USD", "greater than 0"),
        ("0.00", "USD", "greater than 0"),
        ("-5", "USD", "greater than 0"),
        ("1.5", "JPY", "0 decimal"),
        ("1.005", "USD", "2 decimal"),
        ("1.0001", "KWD", "3 decimal"),
        ("10000000000000000.00", "USD", "18 significant"),
        ("1000000000000000000", "JPY", "18 significant"),
    ],
)
def test_invalid_amounts(amount, currency, message):
    with pytest.raises(MoneyError, match=message):
        check_amount(Decimal(amount), currency)


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        ("100.5", "USD", "100.50"),
        ("100", "JPY", "100"),
        ("1.2", "KWD", "1.200"),
        ("7", "USD", "7.00"),
    ],
)
def test_format_amount_uses_the_currency_places(amount, currency, text):
    assert format_amount(Decimal(amount), currency) == text


def test_currency_table():
    assert MINOR_UNITS["JPY"] == 0 and MINOR_UNITS["USD"] == 2 and MINOR_UNITS["KWD"] == 3
    for code in ("usd", "US", "XXX", "ABC", "XAU", "XTS", ""):
        assert not is_active_currency(code)
    assert all(len(c) == 3 and c.isupper() for c in MINOR_UNITS)


@pytest.mark.parametrize(
    "amount",
    [
        "1e999999999",
        "1E+999999999",
        "123456789e999999990",
        "9" * 40,
        "1e18",
        "0.1e20",
    ],
)
def test_huge_amounts_are_refused_by_their_exponent(amount):
    with pytest.raises(MoneyError, match="18 significant"):
        check_amount(Decimal(amount), "USD")


@pytest.mark.parametrize("amount", ["1e-999999999", "1.000"])
def test_tiny_exponents_are_refused_by_their_places(amount):
    with pytest.raises(MoneyError, match="2 decimal"):
        check_amount(Decimal(amount), "USD")


@pytest.mark.parametrize("raw", ["1.00\n1", "1" * 65, "1.00\x00"])
def test_parse_amount_refuses_long_or_multiline_text(raw):
    with pytest.raises(MoneyError):
        parse_amount(raw)

"""Exact money arithmetic: amounts are Decimals, never floats.

Every check here costs the same whatever the size of the number: a Decimal keeps its exponent
apart from its digits, so `1e999999999` is checked by reading the exponent, never by building
the integer it stands for (which would block the event loop for seconds).
"""

from __future__ import annotations

import re
from decimal import Decimal

from payout_core.domain.currencies import MINOR_UNITS

MAX_SIGNIFICANT_DIGITS = 18
# How an amount is written: digits with an optional decimal point (the API documents it too).
PLAIN_DECIMAL = r"[0-9]+(\.[0-9]+)?"
# Applied with fullmatch: `$` would let a trailing newline through.
_PLAIN_DECIMAL = re.compile(PLAIN_DECIMAL)
# No valid amount is written with more characters; longer text is refused before parsing.
MAX_AMOUNT_CHARS = 64


class MoneyError(ValueError):
    """An amount that is not acceptable for a payout."""


def parse_amount(raw: object) -> Decimal:
    """Parse a JSON string or number (already a Decimal or int, never a float) into a Decimal."""
    if isinstance(raw, bool):
        raise MoneyError("Not a valid amount.")
    if isinstance(raw, str):
        text = raw.strip()
        if len(text) > MAX_AMOUNT_CHARS or not _PLAIN_DECIMAL.fullmatch(text):
            raise MoneyError("Not a valid amount: use digits with an optional decimal point.")
        return Decimal(text)
    if isinstance(raw, int):
        return Decimal(raw)
    if isinstance(raw, Decimal):
        if not raw.is_finite():
            raise MoneyError("Not a valid amount.")
        return raw
    if isinstance(raw, float):  # reached only if a caller parsed JSON lossy; refuse to guess
        raise MoneyError("Amounts must be sent as a decimal string or an exact JSON number.")
    raise MoneyError("Not a valid amount.")


def decimal_places(amount: Decimal) -> int:
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def check_amount(amount: Decimal, currency: str) -> None:
    """Raise MoneyError unless the amount is a valid payout amount in that currency."""
    if amount <= 0:
        raise MoneyError("Must be greater than 0.")
    places = MINOR_UNITS[currency]
    if decimal_places(amount) > places:
        raise MoneyError(f"{currency} allows at most {places} decimal places.")
    # adjusted() is the power of ten of the leading digit, so the amount in minor units has
    # adjusted() + places + 1 digits: its size, read without computing it.
    if amount.adjusted() + places + 1 > MAX_SIGNIFICANT_DIGITS:
        raise MoneyError(f"At most {MAX_SIGNIFICANT_DIGITS} significant digits.")


# Each currency's smallest unit as a Decimal (0.01 for EUR), built once: a list of payouts
# formats an amount per row.
_QUANTUM = {code: Decimal(1).scaleb(-places) for code, places in MINOR_UNITS.items()}


def format_amount(amount: Decimal, currency: str) -> str:
    """The amount as a string with exactly the currency's decimal places."""
    return str(amount.quantize(_QUANTUM[currency]))

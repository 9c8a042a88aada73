"""Bank account and BIC rules.

IBANs and BICs are checked by python-stdnum, which knows each country's IBAN length and BBAN
format and the ISO 3166 country codes, not only the mod-97 check digits.
"""

from __future__ import annotations

import re

from stdnum import bic, iban
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidLength,
    ValidationError,
)

# Every pattern here is applied with fullmatch: `$` would let a trailing newline through.
_ACCOUNT = re.compile(r"[A-Z0-9]{6,34}")
# An account that starts like an IBAN (country letters, check digits) is checked as one.
_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]+")
BIC_PATTERN = r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$"
_BIC = re.compile(BIC_PATTERN)
# What account_error accepts before the IBAN check, as a JSON Schema pattern for the API docs:
# 6 to 34 letters and digits, spaces anywhere (normalize_account removes them).
ACCOUNT_PATTERN = r"^ *([A-Za-z0-9] *){6,34}$"

_IBAN_ERRORS: dict[type[ValidationError], str] = {
    InvalidChecksum: "Not a valid IBAN: the check digits do not match.",
    InvalidLength: "Not a valid IBAN: wrong length for its country.",
    InvalidComponent: "Not a valid IBAN: unknown country code.",
}


def normalize_account(raw: str) -> str:
    return raw.replace(" ", "").upper()


def account_error(raw: str) -> str | None:
    """None when the account is acceptable, else a message for the client."""
    account = normalize_account(raw)
    if not _ACCOUNT.fullmatch(account):
        return "Must be 6 to 34 letters and digits (spaces are ignored)."
    if _IBAN_SHAPE.fullmatch(account):
        try:
            iban.validate(account)
        except ValidationError as exc:
            return _IBAN_ERRORS.get(
                type(exc), "Not a valid IBAN: the account number does not fit its country."
            )
    return None


def bic_error(raw: str) -> str | None:
    """None for a BIC of a real country code, else a message for the client."""
    if not _BIC.fullmatch(raw):
        return "Must be a BIC of 8 or 11 upper-case letters and digits."
    try:
        bic.validate(raw)
    except ValidationError:
        return "Not a valid BIC: unknown country code."
    return None

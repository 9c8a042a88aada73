"""Bank account and BIC shape rules."""

from __future__ import annotations

import re

_ACCOUNT = re.compile(r"^[A-Z0-9]{6,34}$")
_IBAN_SHAPE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]+$")
BIC_PATTERN = r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$"
_BIC = re.compile(BIC_PATTERN)
# What account_error accepts before the IBAN check, as a JSON Schema pattern for the API docs:
# 6 to 34 letters and digits, spaces anywhere (normalize_account removes them).
ACCOUNT_PATTERN = r"^ *([A-Za-z0-9] *){6,34}$"


def normalize_account(raw: str) -> str:
    return raw.replace(" ", "").upper()


def iban_checksum_ok(iban: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN without spaces."""
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(digits) % 97 == 1


def account_error(raw: str) -> str | None:
    """None when the account is acceptable, else a message for the client."""
    account = normalize_account(raw)
    if not _ACCOUNT.match(account):
        return "Must be 6 to 34 letters and digits (spaces are ignored)."
    if _IBAN_SHAPE.match(account) and not iban_checksum_ok(account):
        return "Not a valid IBAN: the check digits do not match."
    return None


def is_bic(raw: str) -> bool:
    return bool(_BIC.match(raw))

"""Endpoint signing secrets: made here, stored encrypted with WEBHOOK_SECRET_KEY (Fernet, so a
database dump alone cannot forge a signature), never logged."""

from __future__ import annotations

import base64
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from payout_core.logging import get_logger

log = get_logger(__name__)
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
_SEALED = "fernet:"
_PLAIN = "plain:"


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes, the Standard Webhooks format."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class SecretBox:
    """Seals secrets for the database and opens them for signing.

    WEBHOOK_SECRET_KEY holds one or more Fernet keys, comma-separated: the first seals, all
    open (a key rotation). Without a key, secrets are stored as they are (marked so, and sealed
    by a later key only when rotated) and the process warns once at start.
    """

    def __init__(self, keys: str | None) -> None:
        # The keys' format was checked with the settings (WEBHOOK_SECRET_KEY).
        self._fernet = MultiFernet([Fernet(k.strip()) for k in keys.split(",")]) if keys else None

    @classmethod
    def at_start(cls, keys: str | None) -> SecretBox:
        box = cls(keys)
        if box._fernet is None:
            log.warning(
                "webhook_secrets_unprotected",
                detail="WEBHOOK_SECRET_KEY is not set: webhook secrets are stored unencrypted",
            )
        return box

    def seal(self, secret: str) -> str:
        if self._fernet is None:
            return _PLAIN + secret
        return _SEALED + self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        if stored.startswith(_PLAIN):
            return stored[len(_PLAIN) :]
        if self._fernet is None:
            raise ValueError("a webhook secret is encrypted but WEBHOOK_SECRET_KEY is not set")
        try:
            return self._fernet.decrypt(stored[len(_SEALED) :].encode()).decode()
        except InvalidToken:
            raise ValueError("a webhook secret does not open with WEBHOOK_SECRET_KEY") from None

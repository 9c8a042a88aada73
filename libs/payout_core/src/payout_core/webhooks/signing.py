"""The Standard Webhooks headers, signed by the `standardwebhooks` library (not by hand)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook


def signed_headers(
    msg_id: str, at: datetime, body: bytes, secrets: Sequence[str]
) -> dict[str, str]:
    """webhook-id, webhook-timestamp and one `v1,` signature per secret (two during a
    rotation's overlap), space-separated as the specification has it."""
    data = body.decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(
            Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=data) for secret in secrets
        ),
        "content-type": "application/json",
    }

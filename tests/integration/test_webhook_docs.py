"""The Python verification example of docs/webhooks.md runs and verifies what the service
signs (and refuses a tampered body)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from payout_core.webhooks.secrets import new_secret
from payout_core.webhooks.signing import signed_headers

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def _example() -> str:
    text = DOC.read_text()
    marker = text.index("tests/integration/test_webhook_docs.py")
    block = re.search(r"```python\n(.*?)```", text[marker:], re.S)
    assert block is not None
    return block.group(1)


def test_the_documented_example_verifies_a_signed_delivery_and_refuses_a_forgery():
    namespace: dict = {}
    exec(compile(_example(), str(DOC), "exec"), namespace)
    secret = new_secret()
    namespace["WEBHOOK_SECRET"] = secret
    body = b'{"id":"evt_1","type":"payout.processed","data":{"object":{"id":"p"}}}'
    headers = signed_headers("evt_1", datetime.now(UTC), body, [new_secret(), secret])
    assert namespace["verified_event"](body, headers)["type"] == "payout.processed"
    with pytest.raises(WebhookVerificationError):
        namespace["verified_event"](body.replace(b"processed", b"failed"), headers)

"""`payout-smoke-test --api-url URL --processor-url URL`: the chart's `helm test`.

Checks that /readyz of the api and of the processor answer 200, then creates a payout with the
bootstrap key (API_BOOTSTRAP_KEY) and reads it back. One line per step on stdout; exit 0 when
every step passed, 1 at the first that did not. Standard library only: it runs in the API image.

The payout is real: the smallest EUR amount, described as a release test and marked in its
metadata, so it can be told apart from client payouts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from typing import Any

TIMEOUT_S = 10.0


class StepFailed(Exception):
    """A step of the smoke test did not get the answer it needs."""


def _request(
    method: str, url: str, key: str | None = None, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    headers = {"Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = f"helm-test-{uuid.uuid4()}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")[:500]
    except (OSError, ValueError) as exc:
        raise StepFailed(f"{method} {url}: {exc}") from None


def check_ready(name: str, base_url: str) -> str:
    status, body = _request("GET", f"{base_url}/readyz")
    if status != 200:
        raise StepFailed(f"{name} /readyz answered {status}: {body}")
    return f"{name} is ready"


def create_and_read_back(api_url: str, key: str) -> str:
    payout = {
        "amount": "0.01",
        "currency": "EUR",
        "recipient_details": {"account": "DE89370400440532013000", "name": "Helm test"},
        "description": "helm test of the payout-service release",
        "metadata": {"source": "helm-test"},
    }
    status, created = _request("POST", f"{api_url}/api/payouts/", key, payout)
    if status != 201:
        raise StepFailed(f"POST /api/payouts/ answered {status}: {created}")
    payout_id = created["id"]
    status, read = _request("GET", f"{api_url}/api/payouts/{payout_id}/", key)
    if status != 200:
        raise StepFailed(f"GET /api/payouts/{payout_id}/ answered {status}: {read}")
    if (read["id"], read["amount"], read["currency"]) != (payout_id, "0.01", "EUR"):
        raise StepFailed(f"payout {payout_id} read back differs from what was created: {read}")
    return f"payout {payout_id} created and read back ({read['status']})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="payout-smoke-test", description=__doc__)
    parser.add_argument("--api-url", required=True, help="base URL of the API Service")
    parser.add_argument("--processor-url", required=True, help="base URL of the processor")
    args = parser.parse_args(argv)
    key = os.environ.get("API_BOOTSTRAP_KEY", "")
    steps: list[Callable[[], str]] = [
        lambda: check_ready("api", args.api_url.rstrip("/")),
        lambda: check_ready("processor", args.processor_url.rstrip("/")),
        lambda: create_and_read_back(args.api_url.rstrip("/"), key),
    ]
    if not key:
        print("FAIL: API_BOOTSTRAP_KEY is not set (secrets.apiBootstrapKey)", file=sys.stderr)
        return 1
    for step in steps:
        try:
            print(f"ok: {step()}", flush=True)
        except StepFailed as exc:
            print(f"FAIL: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

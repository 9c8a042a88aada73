"""The OpenAPI document states the rate limit and the key scopes: 429 with its headers on
every operation that needs a key, 403 on every write, RateLimit headers on their responses."""

from __future__ import annotations

from typing import Any

import pytest

from payout_api.openapi.document import build_document
from tests.unit.test_openapi import operations, resolve

WRITES = {"post", "patch", "delete"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document()


def keyed_operations(document: dict[str, Any]):
    for path, method, operation in operations(document):
        if operation.get("security"):
            yield path, method, operation


def test_every_operation_with_a_key_may_answer_429_with_retry_after(document):
    keyed = list(keyed_operations(document))
    assert len(keyed) == 16  # payouts 6, webhook endpoints 7, events 3
    for path, method, operation in keyed:
        response = resolve(document, operation["responses"]["429"])
        assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(response["headers"]), (
            method,
            path,
        )
        examples = response["content"]["application/problem+json"]["examples"]
        assert "rate-limited" in examples


def test_writes_and_only_writes_may_answer_403(document):
    for path, method, operation in keyed_operations(document):
        assert ("403" in operation["responses"]) == (method in WRITES), (method, path)


def test_ratelimit_headers_are_on_every_response_but_the_401(document):
    for path, method, operation in keyed_operations(document):
        for status, response in operation["responses"].items():
            headers = set(resolve(document, response).get("headers", {}))
            has_them = {"RateLimit", "RateLimit-Policy"} <= headers
            assert has_them == (status != "401"), (method, path, status)


def test_operations_without_a_key_have_no_rate_limit(document):
    for path, method, operation in operations(document):
        if not operation.get("security"):
            assert "429" not in operation["responses"], (method, path)

"""The OpenAPI document: valid, complete (every route, every problem type) and honest examples."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from payout_api.middlewares import PROTECTED_PREFIX
from payout_api.openapi.assets import ASSETS, REDOC_DIR
from payout_api.openapi.document import build_document, document_json, document_yaml
from payout_api.openapi.problems import PROBLEMS, example_name
from payout_api.problems import PROBLEM_BASE, TITLES
from payout_api.routes import setup_routes
from payout_core.domain.bank import ACCOUNT_PATTERN, account_error

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document()


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        _, *parts = node["$ref"].split("/")
        node = document
        for part in parts:
            node = node[part]
    return node


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_the_document_is_valid_openapi_3_0(document):
    validate(document)
    assert document["openapi"].startswith("3.0.")


def test_json_and_yaml_renderings_are_the_same_document_built_once(document):
    assert orjson.loads(document_json()) == document
    assert yaml.safe_load(document_yaml()) == document
    assert document_json() is document_json()


def test_every_route_of_the_app_is_documented(document):
    app = web.Application()
    setup_routes(app)
    missing = []
    for resource in app.router.resources():
        path = resource.canonical
        documented = document["paths"].get(path) or document["paths"].get(path + "/")
        for route in resource:
            method = route.method.lower()
            # aiohttp answers HEAD for every add_get route: HEAD is GET without the body.
            if method == "head" and documented and "get" in documented:
                continue
            if not documented or method not in documented:
                missing.append(f"{route.method} {path}")
    assert missing == []


def test_every_documented_operation_is_routed(document):
    app = web.Application()
    setup_routes(app)
    routed = {(r.method.lower(), r.resource.canonical) for r in app.router.routes()}
    for path, method, _ in operations(document):
        assert (method, path) in routed, f"{method.upper()} {path} is documented, not served"


def test_payout_operations_need_the_bearer_key_and_others_none(document):
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    for path, method, operation in operations(document):
        needs_key = path.startswith(PROTECTED_PREFIX)  # what the auth middleware guards
        assert operation["security"] == ([{"bearerAuth": []}] if needs_key else []), path
        if needs_key:
            assert "401" in operation["responses"], f"{method} {path}"


def test_every_problem_type_is_documented_with_its_status(document):
    assert set(PROBLEMS) == set(TITLES)
    examples = document["components"]["examples"]
    for slug, doc in PROBLEMS.items():
        value = examples[example_name(slug)]["value"]
        assert value["type"] == PROBLEM_BASE + slug
        assert value["status"] == doc.status
        assert value["title"] == TITLES[slug]
    table = document["info"]["description"]
    assert all(f"`{PROBLEM_BASE}{slug}`" in table for slug in TITLES)


def test_problem_responses_carry_examples_of_their_own_status(document):
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            media = response.get("content", {}).get("application/problem+json")
            if media is None:
                continue
            for example in media["examples"].values():
                value = resolve(document, example)["value"]
                assert str(value["status"]) == status, f"{method} {path} {status}"


def test_every_response_documents_x_request_id(document):
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            assert "X-Request-ID" in response["headers"], f"{method} {path} {status}"


def test_the_headers_of_the_contract_are_documented(document):
    create = document["paths"]["/api/payouts/"]["post"]
    update = document["paths"]["/api/payouts/{id}/"]["patch"]
    fetch = document["paths"]["/api/payouts/{id}/"]["get"]

    def parameter_names(operation):
        return {resolve(document, p)["name"] for p in operation["parameters"]}

    assert {"Idempotency-Key", "X-Request-ID"} <= parameter_names(create)
    assert "If-Match" in parameter_names(update)
    assert {"Location", "Idempotent-Replayed"} <= set(create["responses"]["201"]["headers"])
    assert "ETag" in fetch["responses"]["200"]["headers"]
    assert "WWW-Authenticate" in fetch["responses"]["401"]["headers"]
    assert "Retry-After" in fetch["responses"]["503"]["headers"]


def test_status_filter_is_a_repeatable_query_array(document):
    listing = document["paths"]["/api/payouts/"]["get"]
    by_name = {p["name"]: p for p in map(lambda p: resolve(document, p), listing["parameters"])}
    assert {"limit", "cursor", "status", "currency", "created_after", "created_before"} <= set(
        by_name
    )
    status = by_name["status"]
    assert status["schema"]["type"] == "array" and status["explode"] is True
    assert status["style"] == "form"


def media_examples(document: dict[str, Any]) -> Iterator[tuple[str, dict, Any]]:
    """(where, schema, example value) of every example the document gives."""
    for path, method, operation in operations(document):
        bodies = [("request", operation.get("requestBody", {}))]
        bodies += list(operation["responses"].items())
        for label, body in bodies:
            for media_type, media in body.get("content", {}).items():
                where = f"{method.upper()} {path} {label} {media_type}"
                if "example" in media:
                    yield where, media["schema"], media["example"]
                for name, example in media.get("examples", {}).items():
                    yield f"{where} {name}", media["schema"], resolve(document, example)["value"]
    for kind in ("parameters", "headers"):
        for name, item in document["components"][kind].items():
            if "example" in item:
                yield f"{kind} {name}", item["schema"], item["example"]


def test_every_example_matches_its_schema(document):
    checked = 0
    for where, schema, value in media_examples(document):
        # Embedding the components lets "#/components/..." references resolve.
        validator = OAS30Validator({**schema, "components": document["components"]})
        errors = [e.message for e in validator.iter_errors(value)]
        assert errors == [], where
        checked += 1
    assert checked >= 25


def test_docs_assets_exist_and_the_vendored_redoc_is_the_recorded_one():
    for name, asset in ASSETS.items():
        assert asset.path.is_file(), name
    recorded, filename = (REDOC_DIR / "SHA256SUMS").read_text().split()
    actual = hashlib.sha256((REDOC_DIR / filename).read_bytes()).hexdigest()
    assert actual == recorded


@pytest.mark.parametrize(
    "account",
    [
        "000111111113",
        "de89 3704 0044 0532 0130 00",
        " 123456 ",
        "12345",
        "1" * 35,
        "ab-1234567",
        "",
    ],
)
def test_the_documented_account_pattern_is_what_validation_accepts(account):
    assert bool(re.match(ACCOUNT_PATTERN, account)) == (account_error(account) is None)

"""The document's paths: the payouts' (and, from webhooks.py, the webhooks'), the operations'
and the documentation's own, each operation with the problems it may answer."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema

from payout_api import schemas
from payout_api.openapi.assets import ASSETS
from payout_api.openapi.components import BEARER, HTML, JSON, YAML, json_content, ref
from payout_api.openapi.examples import CREATE_EXAMPLES, UPDATE_EXAMPLES
from payout_api.openapi.problems import (
    COMMON_PAYOUT_PROBLEMS,
    COMMON_PROBLEMS,
    WRITE_PROBLEMS,
    problem_responses,
)

RATE_LIMIT_HEADERS = ("RateLimit-Policy", "RateLimit")


def payout_operation(
    summary: str,
    description: str,
    responses: dict[str, Any],
    problems: tuple[str, ...],
    parameters: tuple[str, ...] = (),
    query: type[Schema] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    # apispec expands a query schema into one parameter per field.
    query_parameters = [] if query is None else [{"in": "query", "schema": query}]
    all_responses = {**responses, **problem_responses((*problems, *COMMON_PAYOUT_PROBLEMS))}
    for status, response in all_responses.items():
        if status != "401":  # counted against the key's rate limit: every response but a 401
            headers = response.setdefault("headers", {})
            headers.update({name: ref("headers", name) for name in RATE_LIMIT_HEADERS})
    return {
        "tags": ["payouts"],
        "summary": summary,
        "description": description,
        "security": [{BEARER: []}],
        "parameters": [*query_parameters, *parameters],
        "responses": all_responses,
        **extra,
    }


def links_to_payout(*operation_ids: str, if_match: bool = False) -> dict[str, Any]:
    """OpenAPI links from a response with a payout to operations on it (clients and stateful
    testing follow them), optionally sending its ETag back as If-Match."""
    parameters = {"id": "$response.body#/id"}
    if if_match:
        parameters["header.If-Match"] = "$response.header.ETag"
    return {
        operation_id[0].upper() + operation_id[1:]: {
            "operationId": operation_id,
            "parameters": parameters,
        }
        for operation_id in operation_ids
    }


def payout_paths() -> dict[str, dict[str, Any]]:
    payout_response = {
        "description": "The payout.",
        "headers": {"ETag": ref("headers", "ETag")},
        "content": json_content(
            schemas.PayoutSchema, "payout-pending", "payout-processed", "payout-failed"
        ),
        "links": links_to_payout("updatePayout", "deletePayout", if_match=True),
    }
    return {
        "/api/payouts/": {
            "get": payout_operation(
                "List payouts",
                "Your payouts, newest first (by `created_at`, then `id`). Follow `next` for "
                "older payouts and `previous` for newer ones: the cursors are stable while new "
                "payouts arrive. Filters combine with AND; repeat `status` to match any of "
                "several statuses.",
                {
                    "200": {
                        "description": "A page of payouts.",
                        "content": json_content(schemas.PayoutPageSchema, "payout-page"),
                    }
                },
                ("invalid-parameter",),
                query=schemas.ListQuerySchema,
                operationId="listPayouts",
            ),
            "post": payout_operation(
                "Create a payout",
                "Creates a `pending` payout and queues it for processing. With an "
                "`Idempotency-Key`, a retry of the same request within 24 hours answers the "
                "original response (with `Idempotent-Replayed: true`) instead of creating "
                "another payout; the same key with a different body is a 422, and a retry while "
                "the first request is still running may get a 409 with `Retry-After`.",
                {
                    "201": {
                        "description": "Created (or, with `Idempotent-Replayed: true`, the "
                        "replayed original response).",
                        "headers": {
                            "Location": ref("headers", "Location"),
                            "Idempotent-Replayed": ref("headers", "Idempotent-Replayed"),
                        },
                        "content": json_content(schemas.PayoutSchema, "payout-pending"),
                        "links": links_to_payout(
                            "getPayout", "updatePayout", "deletePayout", "listPayoutEvents"
                        ),
                    }
                },
                (
                    "invalid-json",
                    "duplicate-key",
                    "invalid-idempotency-key",
                    "idempotency-key-in-use",
                    "payload-too-large",
                    "unsupported-media-type",
                    "validation-error",
                    "idempotency-key-reused",
                    *WRITE_PROBLEMS,
                ),
                ("Idempotency-Key",),
                operationId="createPayout",
                requestBody={
                    "required": True,
                    "content": {
                        JSON: {
                            "schema": schemas.PayoutCreateSchema,
                            "examples": CREATE_EXAMPLES,
                        }
                    },
                },
            ),
        },
        "/api/payouts/{id}/": {
            "parameters": ["PayoutId"],
            "get": payout_operation(
                "Get a payout",
                "The payout with its current status; `ETag` is its version, for `If-Match`.",
                {"200": payout_response},
                ("not-found",),
                operationId="getPayout",
            ),
            "patch": payout_operation(
                "Change or cancel a payout",
                "Change any of `amount`, `currency`, `recipient_details`, `description` and "
                '`metadata` of a `pending` payout, or cancel it with `{"status": '
                '"cancelled"}` (on its own). Other statuses are set by processing only.',
                {"200": payout_response},
                (
                    "invalid-json",
                    "duplicate-key",
                    "not-found",
                    "invalid-transition",
                    "precondition-failed",
                    "payload-too-large",
                    "unsupported-media-type",
                    "validation-error",
                    *WRITE_PROBLEMS,
                ),
                ("If-Match",),
                operationId="updatePayout",
                requestBody={
                    "required": True,
                    "content": {
                        JSON: {
                            "schema": schemas.PayoutUpdateSchema,
                            "examples": UPDATE_EXAMPLES,
                        },
                    },
                },
            ),
            "delete": payout_operation(
                "Delete a payout",
                "Cancels a `pending` payout (a `cancelled` one as it is) and removes it from "
                "the API; payouts in other statuses cannot be deleted (409).",
                {"204": {"description": "Deleted."}},
                ("not-found", "invalid-transition", "precondition-failed", *WRITE_PROBLEMS),
                ("If-Match",),
                operationId="deletePayout",
            ),
        },
        "/api/payouts/{id}/events/": {
            "parameters": ["PayoutId"],
            "get": payout_operation(
                "A payout's history",
                "The payout's status changes, oldest first: `from` (null for the creation), "
                "`to`, `at` and `reason` (for a failure, its failure code).",
                {
                    "200": {
                        "description": "The status changes.",
                        "content": json_content(schemas.PayoutEventListSchema, "payout-events"),
                    }
                },
                ("not-found",),
                operationId="listPayoutEvents",
            ),
        },
    }


def open_operation(
    tag: str,
    summary: str,
    responses: dict[str, Any],
    problems: tuple[str, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    """An operation that needs no API key."""
    responses = {**responses, **problem_responses((*problems, *COMMON_PROBLEMS))}
    return {"tags": [tag], "summary": summary, "security": [], "responses": responses, **extra}


def ops_paths() -> dict[str, dict[str, Any]]:
    readiness = {
        "schema": ref("schemas", "Readiness"),
        "example": {"status": "ok", "checks": {"database": True, "broker": True}},
    }
    return {
        "/healthz": {
            "get": open_operation(
                "operations",
                "Liveness",
                {
                    "200": {
                        "description": "The process is up.",
                        "content": {
                            JSON: {
                                "schema": ref("schemas", "Health"),
                                "example": {"status": "ok"},
                            }
                        },
                    }
                },
                operationId="healthz",
            )
        },
        "/readyz": {
            "get": open_operation(
                "operations",
                "Readiness",
                {
                    "200": {
                        "description": "Database and broker reachable.",
                        "content": {JSON: readiness},
                    },
                    "503": {
                        "description": "The database or the broker is unreachable.",
                        "content": {JSON: {"schema": ref("schemas", "Readiness")}},
                    },
                },
                operationId="readyz",
                description="200 once the database answers and the broker connection is up.",
            )
        },
        "/metrics": {
            "get": open_operation(
                "operations",
                "Prometheus metrics",
                {
                    "200": {
                        "description": "The Prometheus text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                operationId="metrics",
            )
        },
    }


def docs_paths() -> dict[str, dict[str, Any]]:
    def page(summary: str, operation_id: str) -> dict[str, Any]:
        ok = {"description": "The HTML page.", "content": {HTML: {"schema": {"type": "string"}}}}
        return {"get": open_operation("docs", summary, {"200": ok}, operationId=operation_id)}

    return {
        "/api/schema/": {
            "get": open_operation(
                "docs",
                "This OpenAPI document",
                {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {
                            JSON: {"schema": {"type": "object"}},
                            YAML: {"schema": {"type": "object"}},
                        },
                    },
                },
                ("invalid-parameter",),
                operationId="openapiDocument",
                parameters=[
                    {
                        "in": "query",
                        "name": "format",
                        "description": "`json` (the default) or `yaml`.",
                        "schema": {"type": "string", "enum": ["json", "yaml"], "default": "json"},
                    }
                ],
            )
        },
        "/api/schema/swagger/": page("Swagger UI", "swaggerUi"),
        "/api/schema/redoc/": page("Redoc", "redoc"),
        "/api/schema/assets/{name}": {
            "get": open_operation(
                "docs",
                "A file of the documentation pages",
                {
                    "200": {
                        "description": "The file.",
                        "content": {
                            asset.content_type: {"schema": {"type": "string", "format": "binary"}}
                            for asset in ASSETS.values()
                        },
                    },
                },
                ("not-found",),
                operationId="docsAsset",
                parameters=[
                    {
                        "in": "path",
                        "name": "name",
                        "required": True,
                        "schema": {"type": "string", "enum": sorted(ASSETS)},
                    }
                ],
            )
        },
    }


def with_request_id(operations: dict[str, Any]) -> dict[str, Any]:
    """X-Request-ID on every operation's request and responses."""
    for operation in operations.values():
        operation.setdefault("parameters", []).append("X-Request-ID")
        for response in operation["responses"].values():
            response.setdefault("headers", {})["X-Request-ID"] = ref("headers", "X-Request-ID")
    return operations

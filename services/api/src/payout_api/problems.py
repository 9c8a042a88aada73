"""RFC 9457 problem details: every error the API returns goes through here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from payout_api.handlers.preconditions import etag
from payout_api.service.errors import (
    EndpointNotFound,
    EventNotFound,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidChange,
    InvalidPayout,
    PayoutNotFound,
    UnsafeWebhookUrl,
    UseCaseError,
    VersionMismatch,
)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"

TITLES = {
    "bad-request": "Bad request",
    "invalid-json": "Malformed JSON",
    "duplicate-key": "Duplicate key in a JSON object",
    "invalid-parameter": "Invalid query parameter",
    "invalid-idempotency-key": "Invalid Idempotency-Key header",
    "unauthorized": "Authentication required",
    "insufficient-scope": "The API key may not do this",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "conflict": "Conflict",
    "invalid-transition": "Status change not allowed",
    "precondition-failed": "Precondition failed",
    "payload-too-large": "Request body too large",
    "unsupported-media-type": "Unsupported media type",
    "validation-error": "Validation failed",
    "idempotency-key-reused": "Idempotency-Key reused with a different request",
    "idempotency-key-in-use": "A request with this Idempotency-Key is in progress",
    "rate-limited": "Too many requests",
    "service-unavailable": "Service unavailable",
    "internal-error": "Internal server error",
}


class Problem(Exception):
    """Raise from anywhere in a request; the middleware renders it."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem_body(problem: Problem, instance: str, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + problem.slug,
        "title": TITLES.get(problem.slug, problem.slug.replace("-", " ").capitalize()),
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
        "request_id": request_id,
    }
    if problem.errors is not None:
        body["errors"] = problem.errors
    return body


def problem_response(request: web.Request, problem: Problem, request_id: str) -> web.Response:
    return web.Response(
        status=problem.status,
        body=orjson.dumps(problem_body(problem, request.path, request_id)),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )


_SLUGS_BY_STATUS = {
    400: "bad-request",
    401: "unauthorized",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    503: "service-unavailable",
}


def slug_for_status(status: int) -> str:
    """The problem type of an error aiohttp raised itself."""
    return _SLUGS_BY_STATUS.get(status, "bad-request" if status < 500 else "internal-error")


def from_http_exception(exc: web.HTTPException) -> Problem:
    """aiohttp's own errors (404 route, 405, 413 ...) as problems."""
    slug = slug_for_status(exc.status)
    detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
    return Problem(exc.status, slug, detail, headers=headers)


def _precondition_failed(error: VersionMismatch) -> Problem:
    detail = f"If-Match does not match the current version {etag(error.current_version)}."
    return Problem(412, "precondition-failed", detail)


def _invalid(error: InvalidPayout | UnsafeWebhookUrl) -> Problem:
    return Problem(422, "validation-error", str(error), errors=error.errors)


# The one table from the use cases' errors to problems.
PROBLEMS: dict[type[UseCaseError], Callable[[Any], Problem]] = {
    PayoutNotFound: lambda e: Problem(404, "not-found", str(e)),
    EndpointNotFound: lambda e: Problem(404, "not-found", str(e)),
    EventNotFound: lambda e: Problem(404, "not-found", str(e)),
    VersionMismatch: _precondition_failed,
    IdempotencyKeyInUse: lambda e: Problem(
        409, "idempotency-key-in-use", str(e), headers={"Retry-After": "1"}
    ),
    IdempotencyKeyReused: lambda e: Problem(422, "idempotency-key-reused", str(e)),
    InvalidChange: lambda e: Problem(409, "invalid-transition", str(e)),
    InvalidPayout: _invalid,
    UnsafeWebhookUrl: _invalid,
}


def from_use_case_error(error: UseCaseError) -> Problem:
    return PROBLEMS[type(error)](error)

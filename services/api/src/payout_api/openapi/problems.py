"""The problem types of payout_api.problems as OpenAPI examples and responses.

Each slug in problems.TITLES has one entry here (a unit test keeps the two in step): its HTTP
status, the headers it always carries and a realistic example, whose body is built by the same
problem_body() the API answers with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from payout_api.openapi.examples import EXAMPLE_PAYOUT_ID, EXAMPLE_REQUEST_ID
from payout_api.problems import PROBLEM_BASE, PROBLEM_CONTENT_TYPE, TITLES, Problem, problem_body

EXAMPLE_INSTANCE = "/api/payouts/"


@dataclass(frozen=True)
class ProblemDoc:
    status: int
    detail: str
    errors: dict[str, list[str]] | None = None
    instance: str = EXAMPLE_INSTANCE
    # Response headers that always come with this problem (names of header components).
    headers: tuple[str, ...] = ()


PROBLEMS: dict[str, ProblemDoc] = {
    "bad-request": ProblemDoc(
        400,
        "The request could not be read (Bad Request): its request line or headers are "
        "malformed or too large.",
    ),
    "invalid-json": ProblemDoc(
        400, "The body is not valid JSON: Expecting value: line 1 column 1 (char 0)"
    ),
    "duplicate-key": ProblemDoc(
        400,
        "The key 'amount' appears more than once in one object.",
        errors={"amount": ["Give each key once."]},
    ),
    "invalid-parameter": ProblemDoc(
        400,
        "Invalid query parameter: limit.",
        errors={"limit": ["Must be greater than or equal to 1 and less than or equal to 200."]},
    ),
    "invalid-idempotency-key": ProblemDoc(
        400, "Idempotency-Key must be 1 to 255 printable ASCII characters."
    ),
    "unauthorized": ProblemDoc(
        401, "Send an API key as 'Authorization: Bearer <key>'.", headers=("WWW-Authenticate",)
    ),
    "insufficient-scope": ProblemDoc(
        403,
        "This API key is read-only: it may not POST payouts.",
        headers=("WWW-Authenticate",),
    ),
    "not-found": ProblemDoc(
        404, f"No payout {EXAMPLE_PAYOUT_ID}.", instance=f"/api/payouts/{EXAMPLE_PAYOUT_ID}/"
    ),
    "method-not-allowed": ProblemDoc(405, "Method Not Allowed", headers=("Allow",)),
    "conflict": ProblemDoc(409, "Conflict"),
    "invalid-transition": ProblemDoc(
        409,
        "A processed payout cannot be changed; only pending payouts can.",
        instance=f"/api/payouts/{EXAMPLE_PAYOUT_ID}/",
    ),
    "precondition-failed": ProblemDoc(
        412,
        'If-Match does not match the current version "2".',
        instance=f"/api/payouts/{EXAMPLE_PAYOUT_ID}/",
    ),
    "payload-too-large": ProblemDoc(
        413, "Maximum request body size 65536 exceeded, actual body size 70000"
    ),
    "unsupported-media-type": ProblemDoc(415, "Send the body as application/json."),
    "validation-error": ProblemDoc(
        422,
        "The request body is not valid.",
        errors={
            "amount": ["USD allows at most 2 decimal places."],
            "recipient_details.account": ["Missing data for required field."],
        },
    ),
    "idempotency-key-reused": ProblemDoc(
        422,
        "This Idempotency-Key was used with a different request body in the last 24 hours; "
        "use a new key for a new payout.",
    ),
    "idempotency-key-in-use": ProblemDoc(
        409,
        "Another request with this Idempotency-Key is still in progress; retry shortly.",
        headers=("Retry-After",),
    ),
    "rate-limited": ProblemDoc(
        429,
        "Too many requests with this API key (at most 100 a second, bursts of 200); "
        "retry after 1 s.",
        headers=("Retry-After", "RateLimit", "RateLimit-Policy"),
    ),
    "service-unavailable": ProblemDoc(
        503, "The database is unavailable; retry shortly.", headers=("Retry-After",)
    ),
    "internal-error": ProblemDoc(500, "An unexpected error occurred; it was logged."),
}

# What any operation may answer: a request aiohttp cannot read, a method the path does not
# have, a bug.
COMMON_PROBLEMS = ("bad-request", "method-not-allowed", "internal-error")
# What every /api/payouts operation may answer besides its own problems.
COMMON_PAYOUT_PROBLEMS = (
    *COMMON_PROBLEMS,
    "unauthorized",
    "rate-limited",
    "service-unavailable",
)
# What every /api/payouts operation that writes may answer to a read-only key.
WRITE_PROBLEMS = ("insufficient-scope",)


def example_name(slug: str) -> str:
    return f"problem-{slug}"


def problem_example(slug: str) -> dict[str, Any]:
    doc = PROBLEMS[slug]
    problem = Problem(doc.status, slug, doc.detail, errors=doc.errors)
    return {
        "summary": TITLES[slug],
        "value": problem_body(problem, doc.instance, EXAMPLE_REQUEST_ID),
    }


def problem_responses(slugs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """OpenAPI responses by status code: one application/problem+json response per status,
    with an example of each problem type it may carry."""
    by_status: dict[int, list[str]] = {}
    for slug in slugs:
        by_status.setdefault(PROBLEMS[slug].status, []).append(slug)
    responses = {}
    for status, group in sorted(by_status.items()):
        # Documented (as required) only when every problem type of this status sends it.
        always = set.intersection(*(set(PROBLEMS[s].headers) for s in group))
        responses[str(status)] = {
            "description": "Problem: " + "; ".join(f"`{s}` ({TITLES[s]})" for s in group) + ".",
            "headers": {name: {"$ref": f"#/components/headers/{name}"} for name in sorted(always)},
            "content": {
                PROBLEM_CONTENT_TYPE: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "examples": {
                        s: {"$ref": f"#/components/examples/{example_name(s)}"} for s in group
                    },
                }
            },
        }
    return responses


def problem_table() -> str:
    """The problem types as a Markdown table for the document's description."""
    rows = [f"| `{PROBLEM_BASE}{s}` | {d.status} | {TITLES[s]} |" for s, d in PROBLEMS.items()]
    return "\n".join(["| type | status | title |", "| --- | --- | --- |", *rows])

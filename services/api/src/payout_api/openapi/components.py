"""The document's components: headers, parameters, schemas (the API's marshmallow schemas and
the operations' JSON Schemas) and the JSON Schema of the schemas' custom fields."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from payout_api import schemas
from payout_api.openapi.examples import EXAMPLE_PAYOUT_ID, EXAMPLE_REQUEST_ID
from payout_api.openapi.webhooks import SCHEMAS as WEBHOOK_SCHEMAS
from payout_core.domain.bank import ACCOUNT_PATTERN, BIC_PATTERN
from payout_core.domain.currencies import MINOR_UNITS
from payout_core.domain.money import PLAIN_DECIMAL

JSON = "application/json"
YAML = "application/yaml"
HTML = "text/html"
BEARER = "bearerAuth"
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key of your client: `Authorization: Bearer <key>`.",
}
AMOUNT_PATTERN = f"^{PLAIN_DECIMAL}$"

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id: echoed from the request, generated otherwise.",
        "required": True,
        "schema": {"type": "string"},
        "example": EXAMPLE_REQUEST_ID,
    },
    "Location": {
        "description": "The URL of the payout.",
        "required": True,
        "schema": {"type": "string"},
        "example": f"/api/payouts/{EXAMPLE_PAYOUT_ID}/",
    },
    "ETag": {
        "description": "The payout's version, for If-Match.",
        "required": True,
        "schema": {"type": "string"},
        "example": '"1"',
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response of an earlier request with "
        "the same Idempotency-Key; absent otherwise.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "WWW-Authenticate": {
        "description": "The bearer challenge.",
        "required": True,
        "schema": {"type": "string"},
        "example": 'Bearer realm="payouts"',
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
        "example": 2,
    },
    "RateLimit-Policy": {
        "description": "The key's quota (draft-ietf-httpapi-ratelimit-headers-11): `q` requests "
        "(the burst) per `w` seconds (the time an empty bucket takes to fill). Absent when "
        "rate limiting is off.",
        "schema": {"type": "string"},
        "example": '"default";q=200;w=2',
    },
    "RateLimit": {
        "description": "`r`: requests left now; `t`: seconds until the full quota is back, or, "
        "on a 429, until a request is accepted again (as Retry-After). Absent when rate "
        "limiting is off.",
        "schema": {"type": "string"},
        "example": '"default";r=57;t=2',
    },
    "Allow": {
        "description": "The methods the path supports.",
        "required": True,
        "schema": {"type": "string"},
        "example": "GET,POST",
    },
}

PARAMETERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "in": "header",
        "name": "X-Request-ID",
        "description": "Your id for this request (1-128 of `A-Z a-z 0-9 . _ : -`), echoed in the "
        "response and the logs; another value is replaced by a generated id.",
        "schema": {"type": "string"},
    },
    "Idempotency-Key": {
        "in": "header",
        "name": "Idempotency-Key",
        "description": "1-255 printable ASCII characters, unique per payout you mean to create. "
        "Retrying with the same key and body replays the original response.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[ -~]+$"},
        "example": "order-6735-payout",
    },
    "If-Match": {
        "in": "header",
        "name": "If-Match",
        "description": "The ETag you read (or `*`): the change is made only if the payout is "
        "still at that version; 412 otherwise.",
        "schema": {"type": "string"},
        "example": '"1"',
    },
    "PayoutId": {
        "in": "path",
        "name": "id",
        "required": True,
        "description": "The payout's id.",
        "schema": {"type": "string", "format": "uuid"},
        "example": EXAMPLE_PAYOUT_ID,
    },
}


OPS_SCHEMAS: dict[str, dict[str, Any]] = {
    "Health": {
        "type": "object",
        "properties": {"status": {"type": "string", "enum": ["ok"]}},
        "required": ["status"],
    },
    "Readiness": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "checks": {
                "type": "object",
                "properties": {"database": {"type": "boolean"}, "broker": {"type": "boolean"}},
                "required": ["database", "broker"],
            },
        },
        "required": ["status", "checks"],
    },
}


SCHEMAS: tuple[tuple[str, type[Schema]], ...] = (
    ("Payout", schemas.PayoutSchema),
    ("PayoutCreate", schemas.PayoutCreateSchema),
    ("PayoutUpdate", schemas.PayoutUpdateSchema),
    ("PayoutPage", schemas.PayoutPageSchema),
    ("PayoutEventList", schemas.PayoutEventListSchema),
    ("Problem", schemas.ProblemSchema),
    *WEBHOOK_SCHEMAS.items(),
)


def field_properties(self: Any, field: fields.Field[Any], **kwargs: Any) -> dict[str, Any]:
    """JSON Schema for the custom fields of payout_api.schemas (apispec attribute function)."""
    if isinstance(field.parent, schemas.PayoutSchema) and field.name in schemas.SERVER_SET_FIELDS:
        return {"readOnly": True}
    if isinstance(field, schemas.Amount):
        return {"type": "string", "pattern": AMOUNT_PATTERN}
    if isinstance(field, schemas.Account):
        return {"pattern": ACCOUNT_PATTERN, "minLength": 6}
    if isinstance(field, schemas.Bic):
        return {"pattern": BIC_PATTERN}
    if isinstance(field, schemas.Currency):
        return {"enum": sorted(MINOR_UNITS)}
    if isinstance(field, schemas.Metadata):
        return {
            "maxProperties": schemas.MAX_METADATA_KEYS,
            "additionalProperties": {"type": "string", "maxLength": schemas.MAX_METADATA_VALUE_LEN},
        }
    return {}


def ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def json_content(schema: Any, *examples: str) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if examples:
        media["examples"] = {name: ref("examples", name) for name in examples}
    return {JSON: media}

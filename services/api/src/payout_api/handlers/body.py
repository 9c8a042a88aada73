"""Reading request bodies and query strings into validated data, or a problem."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from aiohttp import web
from marshmallow import Schema, ValidationError

from payout_api.problems import Problem
from payout_core.schemas import flatten_errors

JSON_TYPES = ("application/json", "application/merge-patch+json")
UNSTORABLE_TEXT = "Must be text without NUL characters or unpaired surrogates."


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json(request: web.Request) -> Any:
    """The body as JSON, numbers parsed exactly (Decimal, never float)."""
    if request.content_type not in JSON_TYPES:
        raise Problem(415, "unsupported-media-type", "Send the body as application/json.")
    raw = await request.read()  # raises 413 past client_max_size
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "invalid-json", f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise Problem(
            400, "invalid-json", "The body is not valid JSON: nested too deeply."
        ) from None


def _storable(text: str) -> bool:
    """PostgreSQL text holds no NUL, and a lone surrogate (from a JSON escape) is no UTF-8."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def unstorable_text_at(data: Any, path: str = "") -> str | None:
    """The path ("" for the top) of the first key or string that could not be stored."""
    if isinstance(data, str):
        return None if _storable(data) else path
    if isinstance(data, dict):
        for key, value in data.items():
            if not _storable(key):  # reported as its parent: it could not be rendered either
                return path
            found = unstorable_text_at(value, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    if isinstance(data, list):  # an item is reported as its list, like flatten_errors does
        for item in data:
            if unstorable_text_at(item) is not None:
                return path
    return None


def validate_body(schema: Schema, data: Any) -> dict[str, Any]:
    bad = unstorable_text_at(data)
    if bad is not None:
        raise Problem(
            422,
            "validation-error",
            "The request body is not valid.",
            errors={bad or "body": [UNSTORABLE_TEXT]},
        )
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise Problem(
            422,
            "validation-error",
            "The request body is not valid.",
            errors=flatten_errors(exc.messages),
        ) from None


def validate_query(schema: Schema, request: web.Request, multi: tuple[str, ...]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        if key in multi:
            data[key] = values
        elif len(values) > 1:
            raise Problem(
                400,
                "invalid-parameter",
                f"Query parameter {key!r} is given twice.",
                errors={key: ["Give this parameter once."]},
            )
        else:
            data[key] = values[0]
    bad = unstorable_text_at(data)
    if bad is not None:
        name = bad or "query"
        raise Problem(
            400,
            "invalid-parameter",
            f"Invalid query parameter: {name}.",
            errors={name: [UNSTORABLE_TEXT]},
        )
    try:
        return schema.load(data)
    except ValidationError as exc:
        errors = flatten_errors(exc.messages)
        raise Problem(
            400,
            "invalid-parameter",
            "Invalid query parameter: " + ", ".join(sorted(errors)) + ".",
            errors=errors,
        ) from None


def body_fingerprint(data: Any) -> str:
    """A hash of the request's meaning: key order and number spelling do not matter."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()

"""Reading request bodies and query strings into validated data, or a problem."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from aiohttp import web
from marshmallow import Schema, ValidationError

from payout_api.problems import Problem
from payout_api.schemas import flatten_errors

JSON_TYPE = "application/json"
UNSTORABLE_TEXT = "Must be text without NUL characters or unpaired surrogates."
# No number the API accepts is written with more characters; a longer one is refused before
# it is converted (int() of a long literal grows faster than linearly with its length).
MAX_NUMBER_CHARS = 64


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: `{"amount": "1", "amount": "999"}` would
    otherwise keep the last one silently."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _number(parse: Any) -> Any:
    def bounded(text: str) -> Any:
        if len(text) > MAX_NUMBER_CHARS:
            raise ValueError(f"a number longer than {MAX_NUMBER_CHARS} characters")
        try:
            return parse(text)
        except ArithmeticError:  # decimal refuses an exponent beyond its range
            raise ValueError("a number out of range") from None

    return bounded


_parse_int = _number(int)
_parse_decimal = _number(Decimal)


async def read_json(request: web.Request) -> Any:
    """The body as JSON: numbers parsed exactly (Decimal, never float) and bounded in size,
    every object's keys distinct."""
    if request.content_type != JSON_TYPE:
        raise Problem(415, "unsupported-media-type", "Send the body as application/json.")
    raw = await request.read()  # raises 413 past client_max_size
    try:
        return json.loads(
            raw,
            parse_float=_parse_decimal,
            parse_int=_parse_int,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except _DuplicateKey as exc:
        key = exc.key if _storable(exc.key) else "?"
        raise Problem(
            400,
            "duplicate-key",
            f"The key {key[:64]!r} appears more than once in one object.",
            errors={key[:64]: ["Give each key once."]},
        ) from None
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

"""HTTP handlers for /api/payouts: parse, call the service layer, render."""

from __future__ import annotations

import re
import uuid
from typing import Any

import structlog
from aiohttp import web
from yarl import URL

from payout_api import context
from payout_api.handlers.body import body_fingerprint, read_json, validate_body, validate_query
from payout_api.handlers.preconditions import accepted_versions, etag
from payout_api.keys import PAYOUTS, SETTINGS
from payout_api.pagination import BadCursor, Cursor
from payout_api.problems import Problem
from payout_api.representation import dumps, event_json, payout_json
from payout_api.schemas import ListQuerySchema, PayoutCreateSchema, PayoutUpdateSchema
from payout_api.service.payouts import IdempotentRequest
from payout_core.tracing import annotate_payout

_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")  # fullmatch: `$` admits a final newline
_create_schema = PayoutCreateSchema()
_update_schema = PayoutUpdateSchema()
_list_schema = ListQuerySchema()


def _json(data: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=dumps(data), status=status, content_type="application/json", headers=headers
    )


def _payout_id(request: web.Request) -> uuid.UUID:
    raw = request.match_info["id"]
    try:
        payout_id = uuid.UUID(raw)
    except ValueError:
        raise Problem(404, "not-found", f"No payout {raw[:64]!r}.") from None
    structlog.contextvars.bind_contextvars(payout_id=str(payout_id))
    annotate_payout(payout_id)
    return payout_id


def _link(request: web.Request, url: URL) -> str:
    """A link to one of our routes: under PUBLIC_BASE_URL when set, else relative; never
    built from the request's Host header."""
    base = request.app[SETTINGS].public_base_url
    return f"{base}{url}" if base else str(url)


def _location(request: web.Request, payout_id: object) -> str:
    return _link(request, request.app.router["payout"].url_for(id=str(payout_id)))


def decode_cursor(query: dict[str, Any]) -> dict[str, Any]:
    """The validated query with its `cursor` decoded (a 400 for one we did not issue)."""
    if "cursor" in query:
        try:
            query["cursor"] = Cursor.decode(query["cursor"])
        except BadCursor as exc:
            raise Problem(
                400, "invalid-parameter", f"cursor: {exc}", errors={"cursor": [str(exc)]}
            ) from None
    return query


async def create_payout(request: web.Request) -> web.Response:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise Problem(
            400,
            "invalid-idempotency-key",
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
        )
    raw = await read_json(request)
    data = validate_body(_create_schema, raw)
    created = await request.app[PAYOUTS].create(
        context.client_id(request),
        data,
        # The body's hash only matters to a replay of its key.
        idempotency=IdempotentRequest(key, body_fingerprint(raw)) if key is not None else None,
        request_id=context.request_id(request),
    )
    structlog.contextvars.bind_contextvars(payout_id=str(created.payout_id))
    annotate_payout(created.payout_id)
    headers = {"Location": _location(request, created.payout_id)}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return _json(created.payout, status=201, headers=headers)


async def list_payouts(request: web.Request) -> web.Response:
    query = decode_cursor(validate_query(_list_schema, request, multi=("status",)))
    page = await request.app[PAYOUTS].list(context.client_id(request), query)

    def link(cursor: Cursor | None) -> str | None:
        if cursor is None:
            return None
        # The same filters (already validated) with the new cursor, on the canonical path.
        url = request.app.router["payouts"].url_for().with_query(request.query)
        return _link(request, url.update_query(cursor=cursor.encode()))

    return _json(
        {
            "results": [payout_json(r) for r in page.rows],
            "next": link(page.next),
            "previous": link(page.previous),
        }
    )


async def get_payout(request: web.Request) -> web.Response:
    row = await request.app[PAYOUTS].get(context.client_id(request), _payout_id(request))
    return _json(payout_json(row), headers={"ETag": etag(row["version"])})


async def update_payout(request: web.Request) -> web.Response:
    payout_id = _payout_id(request)
    raw = await read_json(request)
    changes = validate_body(_update_schema, raw)
    row = await request.app[PAYOUTS].update(
        context.client_id(request),
        payout_id,
        changes,
        accepted_versions=accepted_versions(request.headers.get("If-Match")),
        request_id=context.request_id(request),
    )
    return _json(payout_json(row), headers={"ETag": etag(row["version"])})


async def delete_payout(request: web.Request) -> web.Response:
    await request.app[PAYOUTS].delete(
        context.client_id(request),
        _payout_id(request),
        accepted_versions=accepted_versions(request.headers.get("If-Match")),
        request_id=context.request_id(request),
    )
    return web.Response(status=204)


async def list_events(request: web.Request) -> web.Response:
    events = await request.app[PAYOUTS].events(context.client_id(request), _payout_id(request))
    return _json({"results": [event_json(e) for e in events]})

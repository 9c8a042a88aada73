"""HTTP handlers for /api/webhook-endpoints and /api/events: parse, call the use cases, render."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from marshmallow import Schema

from payout_api import context
from payout_api.handlers.body import read_json, validate_body, validate_query
from payout_api.handlers.payouts import _json, _link, decode_cursor
from payout_api.keys import WEBHOOKS
from payout_api.pagination import Cursor
from payout_api.service.errors import EndpointNotFound
from payout_api.webhooks.representation import attempt_json, endpoint_json
from payout_api.webhooks.schemas import (
    EndpointCreateSchema,
    EndpointListQuerySchema,
    EndpointUpdateSchema,
    EventListQuerySchema,
    RedeliverQuerySchema,
)
from payout_core.webhooks.events import event_json, public_event_id

_create_schema = EndpointCreateSchema()
_update_schema = EndpointUpdateSchema()
_endpoint_list_schema = EndpointListQuerySchema()
_event_list_schema = EventListQuerySchema()
_redeliver_schema = RedeliverQuerySchema()
ATTEMPTS_SHOWN = 100


def _paged_query(
    schema: Schema, request: web.Request, multi: tuple[str, ...] = ()
) -> dict[str, Any]:
    return decode_cursor(validate_query(schema, request, multi=multi))


def _page(
    request: web.Request,
    route: str,
    results: list[dict[str, Any]],
    older: Cursor | None,
    newer: Cursor | None,
) -> web.Response:
    def link(cursor: Cursor | None) -> str | None:
        if cursor is None:
            return None
        url = request.app.router[route].url_for().with_query(request.query)
        return _link(request, url.update_query(cursor=cursor.encode()))

    return _json({"results": results, "next": link(older), "previous": link(newer)})


def _endpoint_id(request: web.Request) -> uuid.UUID:
    raw = request.match_info["id"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise EndpointNotFound(raw) from None


async def create_endpoint(request: web.Request) -> web.Response:
    data = validate_body(_create_schema, await read_json(request))
    row, secret = await request.app[WEBHOOKS].create_endpoint(
        context.client_id(request),
        data,
    )
    location = _link(request, request.app.router["webhook-endpoint"].url_for(id=str(row["id"])))
    return _json(endpoint_json(row, secret), status=201, headers={"Location": location})


async def list_endpoints(request: web.Request) -> web.Response:
    query = _paged_query(_endpoint_list_schema, request)
    rows, older, newer = await request.app[WEBHOOKS].list_endpoints(
        context.client_id(request), query
    )
    return _page(request, "webhook-endpoints", [endpoint_json(r) for r in rows], older, newer)


async def get_endpoint(request: web.Request) -> web.Response:
    row = await request.app[WEBHOOKS].get_endpoint(
        context.client_id(request), _endpoint_id(request)
    )
    return _json(endpoint_json(row))


async def update_endpoint(request: web.Request) -> web.Response:
    endpoint_id = _endpoint_id(request)
    changes = validate_body(_update_schema, await read_json(request))
    row = await request.app[WEBHOOKS].update_endpoint(
        context.client_id(request),
        endpoint_id,
        changes,
    )
    return _json(endpoint_json(row))


async def delete_endpoint(request: web.Request) -> web.Response:
    await request.app[WEBHOOKS].delete_endpoint(context.client_id(request), _endpoint_id(request))
    return web.Response(status=204)


async def rotate_secret(request: web.Request) -> web.Response:
    row, secret = await request.app[WEBHOOKS].rotate_secret(
        context.client_id(request),
        _endpoint_id(request),
    )
    return _json(
        {
            "secret": secret,
            "previous_secret_expires_at": row["previous_secret_expires_at"],
            "endpoint": endpoint_json(row),
        }
    )


async def list_deliveries(request: web.Request) -> web.Response:
    rows = await request.app[WEBHOOKS].list_attempts(
        context.client_id(request), _endpoint_id(request), ATTEMPTS_SHOWN
    )
    return _json({"results": [attempt_json(r) for r in rows]})


async def list_events(request: web.Request) -> web.Response:
    query = _paged_query(_event_list_schema, request, multi=("type",))
    rows, older, newer = await request.app[WEBHOOKS].list_events(context.client_id(request), query)
    return _page(request, "events", [event_json(r) for r in rows], older, newer)


async def get_event(request: web.Request) -> web.Response:
    row = await request.app[WEBHOOKS].get_event(
        context.client_id(request), request.match_info["id"]
    )
    return _json(event_json(row))


async def redeliver_event(request: web.Request) -> web.Response:
    query = validate_query(_redeliver_schema, request, multi=())
    order = await request.app[WEBHOOKS].redeliver(
        context.client_id(request),
        request.match_info["id"],
        query.get("endpoint_id"),
    )
    return _json(
        {
            "event_id": public_event_id(order.event_id),
            "endpoint_id": None if order.endpoint_id is None else str(order.endpoint_id),
        },
        status=202,
    )


def add_routes(router: web.UrlDispatcher) -> None:
    """Each path with and without its trailing slash, as the payouts' are."""

    def add(path: str, name: str, *methods: tuple[str, Any]) -> None:
        for variant in (path + "/", path):
            resource = router.add_resource(variant, name=name if variant.endswith("/") else None)
            for method, handler in methods:
                resource.add_route(method, handler)

    endpoints = "/api/webhook-endpoints"
    add(endpoints, "webhook-endpoints", ("GET", list_endpoints), ("POST", create_endpoint))
    add(
        endpoints + "/{id}",
        "webhook-endpoint",
        ("GET", get_endpoint),
        ("PATCH", update_endpoint),
        ("DELETE", delete_endpoint),
    )
    add(endpoints + "/{id}/rotate-secret", "webhook-endpoint-rotate", ("POST", rotate_secret))
    add(endpoints + "/{id}/deliveries", "webhook-endpoint-deliveries", ("GET", list_deliveries))
    add("/api/events", "events", ("GET", list_events))
    add("/api/events/{id}", "event", ("GET", get_event))
    add("/api/events/{id}/redeliver", "event-redeliver", ("POST", redeliver_event))

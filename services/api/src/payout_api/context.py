"""Per-request values set by middlewares and read by handlers (typed request keys)."""

from __future__ import annotations

import uuid

from aiohttp import web

REQUEST_ID = web.RequestKey("request_id", str)
CLIENT_ID = web.RequestKey("client_id", uuid.UUID)


def request_id(request: web.Request) -> str:
    return request.get(REQUEST_ID, "")


def client_id(request: web.Request) -> uuid.UUID:
    return request[CLIENT_ID]

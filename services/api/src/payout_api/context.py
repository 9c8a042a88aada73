"""Per-request values set by middlewares and read by handlers (typed request keys)."""

from __future__ import annotations

import uuid

from aiohttp import web

from payout_api.rate_limit import Decision
from payout_core.clients import VerifiedKey

REQUEST_ID = web.RequestKey("request_id", str)
CLIENT_ID = web.RequestKey("client_id", uuid.UUID)
API_KEY = web.RequestKey("api_key", VerifiedKey)
RATE_LIMIT = web.RequestKey("rate_limit", Decision)


def request_id(request: web.Request) -> str:
    return request.get(REQUEST_ID, "")


def client_id(request: web.Request) -> uuid.UUID:
    return request[CLIENT_ID]

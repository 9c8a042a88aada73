"""Health and metrics handlers of the API."""

from __future__ import annotations

from aiohttp import web

from payout_api.keys import BROKER, ENGINE, METRICS
from payout_core.ops_http import healthz, metrics_response, readiness

__all__ = ["healthz", "metrics", "readyz"]


async def readyz(request: web.Request) -> web.Response:
    return await readiness(request.app[ENGINE], request.app[BROKER])


async def metrics(request: web.Request) -> web.Response:
    return metrics_response(request.app[METRICS])

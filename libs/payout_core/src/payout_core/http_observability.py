"""One aiohttp middleware for both services: HTTP metrics and one access-log line a request.

Labels and log fields name the route template (`/api/payouts/{id}/`), never the raw path,
so label cardinality stays bounded; the payout id, when there is one, is in the log context.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from payout_core.logging import get_logger
from payout_core.metrics import ServiceMetrics

log = get_logger(__name__)
UNMATCHED_ROUTE = "unmatched"
# Probes and scrapes arrive every few seconds: logged at debug so they do not drown the rest.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
# What nginx records for a client that went away before the answer (not a server error).
CLIENT_CLOSED_REQUEST = 499


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def _log_level(route: str, status: int) -> int:
    if route in QUIET_ROUTES:
        return logging.DEBUG
    return logging.ERROR if status >= 500 else logging.INFO


def observe_requests(metrics: ServiceMetrics) -> Middleware:
    """Count and time every request, and log it once as `http_request`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED_REQUEST
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(request)
            metrics.http_requests.labels(request.method, route, str(status)).inc()
            metrics.http_duration.labels(request.method, route).observe(elapsed)
            log.log(
                _log_level(route, status),
                "http_request",
                method=request.method,
                route=route,
                path=request.path[:200],
                status=status,
                duration_ms=round(elapsed * 1000, 1),
            )

    return middleware

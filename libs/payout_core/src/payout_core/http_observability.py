"""aiohttp middlewares for every service: a server span per request while tracing is on, and
HTTP metrics with one access-log line a request.

Labels and log fields name the route template (`/api/payouts/{id}/`), never the raw path,
so label cardinality stays bounded; the payout id, when there is one, is in the log context.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from payout_core import tracing
from payout_core.logging import get_logger
from payout_core.metrics import ServiceMetrics

log = get_logger(__name__)
UNMATCHED_ROUTE = "unmatched"
# Probes and scrapes arrive every few seconds: logged at debug so they do not drown the
# rest, and never traced.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
# The methods the HTTP conventions name; any other is "_OTHER" (a span name per method
# would let a client mint names).
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
# What nginx records for a client that went away before the answer (not a server error).
CLIENT_CLOSED_REQUEST = 499


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def _status_of(error: BaseException) -> int:
    """The status a request that raised `error` is counted, logged and traced with."""
    if isinstance(error, web.HTTPException):
        return error.status
    if isinstance(error, asyncio.CancelledError):
        return CLIENT_CLOSED_REQUEST
    return 500


def _log_level(route: str, status: int) -> int:
    if route in QUIET_ROUTES:
        return logging.DEBUG
    return logging.ERROR if status >= 500 else logging.INFO


@web.middleware
async def trace_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A SERVER span for each request while tracing is on (probes and scrapes excepted), by
    the HTTP conventions. The sampler is asked before anything else is collected: a request it
    drops costs a span that records nothing."""
    if not tracing.enabled():
        return await handler(request)
    route = route_template(request)
    if route in QUIET_ROUTES:
        return await handler(request)
    method = _method_label(request.method)
    matched = route != UNMATCHED_ROUTE
    attributes = {
        "http.request.method": method,
        "url.scheme": request.scheme,
        "url.path": request.path,
    }
    if matched:
        attributes["http.route"] = route
    label = "HTTP" if method == "_OTHER" else method
    name = f"{label} {route}" if matched else label
    with tracing.server_span(name, request.headers, attributes) as span:
        recording = span.is_recording()
        if recording:
            span.set_attributes(_recorded_attributes(request))
        try:
            response = await handler(request)
        except BaseException as exc:
            if recording:
                tracing.end_server_span(span, _status_of(exc))
            raise
        if recording:
            tracing.end_server_span(span, response.status)
        return response


def _recorded_attributes(request: web.Request) -> dict[str, Any]:
    """The conventions' other request attributes, for a span being recorded."""
    url = request.url
    attributes: dict[str, Any] = {
        "network.protocol.version": f"{request.version.major}.{request.version.minor}",
        "server.address": url.host,
        "server.port": url.port,
        "client.address": request.remote,
        "user_agent.original": request.headers.get("User-Agent"),
        "url.query": request.query_string or None,
    }
    if request.method not in HTTP_METHODS:
        attributes["http.request.method_original"] = request.method
    return {k: v for k, v in attributes.items() if v is not None}


def _method_label(method: str) -> str:
    """A method the HTTP conventions name, or "_OTHER": a client cannot mint label values."""
    return method if method in HTTP_METHODS else "_OTHER"


def observe_requests(metrics: ServiceMetrics) -> Middleware:
    """Count and time every request, and log it once as `http_request`."""
    # The labelled children of both metrics, looked up once per series: prometheus_client's
    # labels() validates and locks on every call. Keyed by the labels themselves, so this holds
    # no more entries than the registry has series (whatever methods a parser lets through).
    series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(method: str, route: str, status: int, elapsed: float) -> None:
        key = (_method_label(method), route, status)
        children = series.get(key)
        if children is None:
            children = series[key] = (
                metrics.http_requests.labels(key[0], route, str(status)),
                metrics.http_duration.labels(key[0], route),
            )
        children[0].inc()
        children[1].observe(elapsed)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except BaseException as exc:
            status = _status_of(exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(request)
            observe(request.method, route, status, elapsed)
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

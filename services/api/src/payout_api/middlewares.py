"""The server span (while tracing is on), request id, metrics and access log, problem+json
errors, bearer authentication, the per-key rate limit and the key's scope, outermost first.
The limit and the scope are checked before a handler runs, so a refused request costs no
database work beyond authentication (which the key cache spares too)."""

from __future__ import annotations

import asyncio
import contextvars
import re
import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from payout_api import context
from payout_api.keys import ENGINE, KEY_CACHE, METRICS, RATE_LIMITER, SETTINGS
from payout_api.problems import (
    Problem,
    from_http_exception,
    from_use_case_error,
    problem_response,
)
from payout_api.rate_limit import ratelimit_header
from payout_api.service.errors import UseCaseError
from payout_core.clients import VerifiedKey, authenticate
from payout_core.db.engine import autocommit
from payout_core.db.errors import is_database_unavailable
from payout_core.http_observability import observe_requests, trace_requests
from payout_core.logging import get_logger
from payout_core.tracing import record_error

log = get_logger(__name__)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")  # fullmatch: `$` admits a final newline
# str.startswith takes a tuple: every client resource needs a key.
PROTECTED_PREFIX = ("/api/payouts", "/api/webhook-endpoints", "/api/events")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-ID", "")
    rid = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    request[context.REQUEST_ID] = rid
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # raised past the problem middleware (should not happen)
        exc.headers["X-Request-ID"] = rid
        raise
    response.headers["X-Request-ID"] = rid
    return response


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = context.request_id(request)
    try:
        return await handler(request)
    except Problem as problem:
        return problem_response(request, problem, rid)
    except UseCaseError as error:
        return problem_response(request, from_use_case_error(error), rid)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem_response(request, from_http_exception(exc), rid)
    except Exception as exc:
        record_error(exc)  # answered here, so the server span would not see it
        if is_database_unavailable(exc):
            first_line = (str(exc) or type(exc).__name__).splitlines()[0]
            log.warning("database_unavailable", error=first_line[:200])
            problem = Problem(
                503,
                "service-unavailable",
                "The database is unavailable; retry shortly.",
                headers={"Retry-After": "2"},
            )
            return problem_response(request, problem, rid)
        log.exception("unhandled_error")
        problem = Problem(500, "internal-error", "An unexpected error occurred; it was logged.")
        return problem_response(request, problem, rid)


class DatabaseTimeout(TimeoutError):
    """The database did not answer within API_DB_TIMEOUT_S (mapped to 503 like any outage)."""


@web.middleware
async def db_deadline_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer an API request within API_DB_TIMEOUT_S, whatever the database does.

    A database that stops answering without closing its connections (a dropped route, a
    black-holed node) leaves statements waiting for TCP to give up. The caller gets a 503 at
    the deadline instead; the request itself runs on, shielded, so a statement already sent
    still ends normally (committed or not: a client retrying with its Idempotency-Key sees
    which) and its connection returns to the pool intact. How many can run on is bounded by
    the pool and its bounded queue (API_DB_MAX_WAITING).
    """
    if not request.path.startswith(PROTECTED_PREFIX):
        return await handler(request)
    timeout_s = request.app[SETTINGS].api_db_timeout_s
    # Its own task, in a copy of this context: what it binds for the log (client, payout) is
    # carried back out to the access-log line below.
    context = contextvars.copy_context()

    async def respond() -> web.StreamResponse:
        return await handler(request)

    work = asyncio.get_running_loop().create_task(respond(), context=context)
    try:
        try:
            return await asyncio.wait_for(asyncio.shield(work), timeout_s)
        finally:
            structlog.contextvars.bind_contextvars(
                **context.run(structlog.contextvars.get_contextvars)
            )
    except TimeoutError:
        if work.done():  # it finished as the deadline struck, or raised a TimeoutError itself
            return work.result()
        work.add_done_callback(_log_late_outcome)
        raise DatabaseTimeout(f"no answer from the database within {timeout_s} s") from None


def _log_late_outcome(work: asyncio.Future[web.StreamResponse]) -> None:
    if work.cancelled():
        return
    exc = work.exception()
    if exc is None:
        log.info("request_finished_after_deadline")
    elif not isinstance(exc, Problem):
        log.warning("request_failed_after_deadline", error=repr(exc)[:200])


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(PROTECTED_PREFIX):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="payouts"'}
    if scheme.lower() != "bearer" or not key.strip():
        raise Problem(
            401,
            "unauthorized",
            "Send an API key as 'Authorization: Bearer <key>'.",
            headers=challenge,
        )
    verified = await _verified_key(request.app, key.strip())
    if verified is None:
        raise Problem(
            401,
            "unauthorized",
            "The API key is unknown, expired, revoked or disabled.",
            headers={"WWW-Authenticate": 'Bearer realm="payouts", error="invalid_token"'},
        )
    request[context.API_KEY] = verified
    request[context.CLIENT_ID] = verified.client_id
    structlog.contextvars.bind_contextvars(client_id=str(verified.client_id))
    return await handler(request)


async def _verified_key(app: web.Application, key: str) -> VerifiedKey | None:
    cache = app[KEY_CACHE]
    verified = cache.get(key)
    if verified is None:
        asked_at = cache.now()
        async with autocommit(app[ENGINE]) as conn:
            verified = await authenticate(conn, key)
        if verified is not None:
            cache.put(key, verified, asked_at)
    return verified


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    limiter = request.app[RATE_LIMITER]
    verified = request.get(context.API_KEY)
    if verified is None or not limiter.enabled:
        return await handler(request)
    decision = limiter.acquire(verified.key_id)
    request[context.RATE_LIMIT] = decision  # the headers are added as the response starts
    if not decision.allowed:
        raise Problem(
            429,
            "rate-limited",
            f"Too many requests with this API key (at most {limiter.rate_per_s:g} a second, "
            f"bursts of {limiter.burst}); retry after {decision.retry_after_s} s.",
            headers={"Retry-After": str(decision.retry_after_s)},
        )
    return await handler(request)


@web.middleware
async def scope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    verified = request.get(context.API_KEY)
    writes = request.method not in READ_METHODS
    routed = request.match_info.http_exception is None  # an unknown path or method: 404 / 405
    if verified is not None and not verified.may_write and writes and routed:
        raise Problem(
            403,
            "insufficient-scope",
            f"This API key is read-only: it may not {request.method} payouts.",
            headers={
                "WWW-Authenticate": 'Bearer realm="payouts", error="insufficient_scope", '
                'scope="write"'
            },
        )
    return await handler(request)


async def add_rate_limit_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response to a rate-limited request, errors included (on_response_prepare)."""
    decision = request.get(context.RATE_LIMIT)
    if decision is not None:
        response.headers["RateLimit-Policy"] = request.app[RATE_LIMITER].policy_header()
        response.headers["RateLimit"] = ratelimit_header(decision)


def setup_middlewares(app: web.Application) -> None:
    app.middlewares.extend(
        [
            trace_requests,
            request_id_middleware,
            observe_requests(app[METRICS]),
            problem_middleware,
            db_deadline_middleware,
            auth_middleware,
            rate_limit_middleware,
            scope_middleware,
        ]
    )
    app.on_response_prepare.append(add_rate_limit_headers)

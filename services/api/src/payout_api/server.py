"""The API's HTTP server: aiohttp's, except that the errors aiohttp raises before any
middleware runs (a request line or header that is malformed or too large) are answered as
problem+json like every other error, without echoing the offending bytes, and logged at
warning: they are the client's mistake, not ours.

aiohttp has no hook for those answers (aio-libs/aiohttp#3287), so the server's connection
handler is a subclass; the tests send such requests to the real process to keep it honest.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Awaitable
from http import HTTPStatus

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from payout_api.problems import PROBLEM_CONTENT_TYPE, Problem, problem_body, slug_for_status
from payout_core.logging import get_logger
from payout_core.runtime import settle_garbage_collector

log = get_logger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ProblemRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        request_id = uuid.uuid4().hex
        log.warning(
            "http_request_unreadable",
            status=status,
            error=type(exc).__name__ if exc else None,
            remote=request.remote,
            request_id=request_id,
        )
        if request.writer.output_size > 0:  # part of a response went out: nothing to add
            raise ConnectionError("a response was already started")
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        problem = Problem(
            status,
            slug_for_status(status),
            f"The request could not be read ({phrase}): its request line or headers are "
            "malformed or too large.",
        )
        response = web.Response(
            status=status,
            body=orjson.dumps(problem_body(problem, "", request_id)),
            content_type=PROBLEM_CONTENT_TYPE,
            headers={"X-Request-ID": request_id},
        )
        response.force_close()
        return response


class _ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The same server with our connection handler: it adds behaviour, no state.
        server.__class__ = _ProblemServer
        return server


async def serve(
    app: Awaitable[web.Application],
    *,
    host: str,
    port: int,
    shutdown_timeout: float,
    reuse_port: bool,
) -> None:
    """Serve until SIGTERM or SIGINT, then stop listening, let requests in flight finish
    (up to shutdown_timeout) and close the app's resources."""
    runner = ApiRunner(await app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()  # the app's start-up: its resources are open
    log.info("garbage_collector_settled", **settle_garbage_collector())
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()

"""An aiohttp receiver for webhooks in the tests: records every request and answers as told
(a status per request in turn, a delay, a hook run before answering)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from tests.support.processes import free_port


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def event(self) -> dict:
        return orjson.loads(self.body)

    @property
    def signatures(self) -> list[str]:
        return self.headers["webhook-signature"].split(" ")


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    statuses: list[int] = field(default_factory=list)  # answered in turn, then 200
    delay_s: float = 0.0
    before_answer: Callable[[Received], Awaitable[None]] | None = None
    received: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def succeeded(self) -> list[Received]:
        """Requests answered 2xx (the recorded status is set after the answer was chosen)."""
        return [r for r, s in zip(self.received, self._answers, strict=False) if s < 300]

    def __post_init__(self) -> None:
        self._answers: list[int] = []

    async def _handle(self, request: web.Request) -> web.Response:
        got = Received({k.lower(): v for k, v in request.headers.items()}, await request.read())
        self.received.append(got)
        status = self.statuses.pop(0) if self.statuses else 200
        self._answers.append(status)
        if self.before_answer is not None:
            await self.before_answer(got)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)  # the slow receiver under test, not a wait
        return web.Response(status=status, text="ok" if status < 300 else "no")

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.event["type"] == event_type]

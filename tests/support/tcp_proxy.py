"""A test-only TCP forwarder that can make a server (PostgreSQL, RabbitMQ) vanish and return.

The proxy listens on a free port of 127.0.0.1 and forwards every connection to the target.
`cut()` aborts every live connection and refuses new ones, as a crashed or unreachable server
would, or has a stand-in answer them (a PostgreSQL that is starting up, say); `restore()` lets
connections through again. `stall()` is the silent kind of failure (a black hole): the proxy
keeps every connection open and accepts new ones, but forwards nothing until `restore()`.
It runs its own event loop in a thread of its own, so that it keeps forwarding while a test
blocks (subprocess waits, sync polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from tests.support.processes import free_port

T = TypeVar("T")
CHUNK = 64 * 1024
# Speaks to a client in the server's place while the proxy is cut.
Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._live: set[asyncio.StreamWriter] = set()
        self._answer: Answer | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.connections_accepted = 0

    @classmethod
    def to_url(cls, url: str) -> TcpProxy:
        """A proxy to the host and port of a service URL (postgresql://..., amqp://...)."""
        parts = urlsplit(url)
        assert parts.hostname and parts.port, url
        return cls(parts.hostname, parts.port)

    def proxied(self, url: str) -> str:
        """The same URL, with the proxy in place of the server."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self, answer: Answer | None = None) -> None:
        """Abort every connection; refuse new ones, or let `answer` speak to them."""
        self._call(self._cut(answer))

    def stall(self) -> None:
        """Forward nothing, close nothing: packets into a black hole."""
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.set)
        self._call(self._restore())

    def close(self) -> None:
        if self._thread.is_alive():
            self._call(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._forward, "127.0.0.1", self.port, reuse_address=True
            )

    async def _cut(self, answer: Answer | None = None) -> None:
        self._answer = answer
        if answer is None and self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._live):
            writer.transport.abort()
        self._live.clear()

    async def _shutdown(self) -> None:
        await self._cut()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _restore(self) -> None:
        self._answer = None
        await self._listen()

    async def _forward(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter):
        self.connections_accepted += 1
        if self._answer is not None:
            with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
                await self._answer(client_reader, client)
            client.transport.abort()
            return
        await self._flowing.wait()
        try:
            server_reader, server = await asyncio.open_connection(*self.target)
        except OSError:
            client.transport.abort()
            return
        self._live.update((client, server))
        pipes = [
            asyncio.create_task(_pipe(client_reader, server, self._flowing)),
            asyncio.create_task(_pipe(server_reader, client, self._flowing)),
        ]
        # Either side closing ends the whole connection, as for a direct one.
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for task in pipes:
            task.cancel()
        for writer in (client, server):
            self._live.discard(writer)
            writer.transport.abort()
        await asyncio.gather(*pipes, return_exceptions=True)


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event
) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(CHUNK):
            await flowing.wait()  # stalled: hold the bytes, as a dropped route would
            writer.write(data)
            await writer.drain()

"""Taps for TcpProxy that read PostgreSQL's and AMQP 0-9-1's framing as it passes and act at
an exact protocol event, so that a fault test hits its dangerous window every time:

- `PgCommitReplyLost`: the transaction that ran a given statement commits at the server, and
  the client never hears it (the connection dies with the reply in flight);
- `AmqpFrameTrap`: at a given AMQP method (a publish, a broker's confirm, a consumer's ack),
  run an action (SIGKILL a process) and end the connection before that frame is forwarded.

A `Window` is shared by the taps of every connection: it is armed for a number of hits and
records each, so a test asserts that the window was really hit.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.tcp_proxy import CloseConnection


@dataclass
class Window:
    """A dangerous moment: acted on `times` times at most, each hit recorded."""

    times: int = 1
    action: Callable[[], None] | None = None
    hits: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, what: str) -> bool:
        with self._lock:
            if len(self.hits) >= self.times:
                return False
            self.hits.append(what)
        if self.action is not None:
            self.action()
        return True


class _Messages:
    """Splits a byte stream into whole length-prefixed messages; `size` gives the length of
    the message at the start of a buffer (None: not enough bytes yet)."""

    def __init__(self, size: Callable[[bytes], int | None]) -> None:
        self._size = size
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        messages = []
        while (n := self._size(self._buffer)) is not None and len(self._buffer) >= n:
            messages.append(self._buffer[:n])
            self._buffer = self._buffer[n:]
        return messages


# --- PostgreSQL (frontend/backend protocol 3.0) ---------------------------------------------

_SSL_REQUEST = 80877103


def _pg_typed_size(buffer: bytes) -> int | None:
    """A typed message: type byte, then a length that counts itself but not the type."""
    return 1 + struct.unpack("!I", buffer[1:5])[0] if len(buffer) >= 5 else None


def _cstrings(body: bytes, count: int) -> list[str]:
    return [part.decode(errors="replace") for part in body.split(b"\0", count)[:count]]


class PgCommitReplyLost:
    """The server commits a transaction that ran a statement containing `marker`; its reply
    (everything up to ReadyForQuery) is dropped and the connection ended."""

    def __init__(self, window: Window, marker: str) -> None:
        self._window = window
        self._marker = marker
        self._statements: dict[str, str] = {}  # prepared statement name -> SQL
        self._ssl_requested = False
        self._startup_done = False
        self._server_answered_ssl = False
        self._armed = False
        self._held: list[bytes] = []
        self._from_client = _Messages(self._client_size)
        self._from_server = _Messages(self._server_size)

    def _client_size(self, buffer: bytes) -> int | None:
        if self._startup_done:
            return _pg_typed_size(buffer)
        # SSLRequest and StartupMessage have no type byte.
        return struct.unpack("!I", buffer[:4])[0] if len(buffer) >= 4 else None

    def _server_size(self, buffer: bytes) -> int | None:
        if self._ssl_requested and not self._server_answered_ssl:
            return 1 if buffer else None  # 'N' (or 'S': then TLS, which no tap can read)
        return _pg_typed_size(buffer)

    def to_server(self, data: bytes) -> bytes:
        for message in self._from_client.feed(data):
            if not self._startup_done:
                code = struct.unpack("!I", message[4:8])[0]
                self._ssl_requested |= code == _SSL_REQUEST
                self._startup_done = code != _SSL_REQUEST
                continue
            kind, body = message[:1], message[5:]
            if kind == b"P":  # Parse: statement name, query
                name, query = _cstrings(body, 2)
                self._statements[name] = query
            elif kind == b"B":  # Bind: portal, statement name
                _portal, name = _cstrings(body, 2)
                self._armed |= self._marker in self._statements.get(name, "")
            elif kind == b"Q":  # a simple query
                self._armed |= self._marker in _cstrings(body, 1)[0]
        return data

    def to_client(self, data: bytes) -> bytes:
        out = []
        for message in self._from_server.feed(data):
            if self._ssl_requested and not self._server_answered_ssl:
                self._server_answered_ssl = True
                out.append(message)
                continue
            if not self._armed:
                out.append(message)
                continue
            self._held.append(message)
            if message[:1] != b"Z":  # ReadyForQuery ends a reply; its byte: the tx status
                continue
            status = message[5:6]
            if status == b"I" and self._window.take(f"commit reply lost: {self._marker}"):
                raise CloseConnection  # committed at the server; the client never hears it
            out.extend(self._held)
            self._held.clear()
            self._armed = status == b"T"  # still inside the transaction: wait for COMMIT
        return b"".join(out)


# --- AMQP 0-9-1 -----------------------------------------------------------------------------

_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
_METHOD_FRAME = 1
BASIC_PUBLISH = (60, 40)
BASIC_ACK = (60, 80)


def _amqp_frame_size(buffer: bytes) -> int | None:
    """type (1), channel (2), payload size (4), payload, frame end (1)."""
    return 8 + struct.unpack("!I", buffer[3:7])[0] if len(buffer) >= 7 else None


class AmqpFrameTrap:
    """At the first method frame `method` (class id, method id) going `direction`
    ("to_server" or "to_client") while the window is open: take the window (its action runs)
    and end the connection before the frame is forwarded."""

    def __init__(self, window: Window, method: tuple[int, int], direction: str) -> None:
        self._window = window
        self._method = method
        self._direction = direction
        self._header_seen = False
        self._frames = _Messages(_amqp_frame_size)

    def _watch(self, data: bytes, direction: str) -> bytes:
        if direction != self._direction:
            return data
        if direction == "to_server" and not self._header_seen:
            # The client opens with the protocol header, then frames.
            self._header_seen = True
            if data.startswith(_AMQP_HEADER):
                data = data[len(_AMQP_HEADER) :]
                prefix = _AMQP_HEADER
            else:
                prefix = b""
            return prefix + self._watch(data, direction)
        out = []
        for frame in self._frames.feed(data):
            is_method = frame[0] == _METHOD_FRAME
            if (
                is_method
                and struct.unpack("!HH", frame[7:11]) == self._method
                and self._window.take(f"AMQP method {self._method} {direction}")
            ):
                raise CloseConnection
            out.append(frame)
        return b"".join(out)

    def to_server(self, data: bytes) -> bytes:
        return self._watch(data, "to_server")

    def to_client(self, data: bytes) -> bytes:
        return self._watch(data, "to_client")

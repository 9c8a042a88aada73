"""A PostgreSQL stand-in that turns every connection away with a given SQLSTATE, as a server
that is starting up (57P03) or out of connection slots (53300) does. Used with TcpProxy.cut."""

from __future__ import annotations

import asyncio
import struct

from tests.support.tcp_proxy import Answer

# Requests a client may send before its startup message; the answer "N" declines them.
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


def error_response(sqlstate: str, message: str) -> bytes:
    fields = b"".join(
        code + value.encode() + b"\0"
        for code, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!i", len(body) + 4) + body


def refuse_with(sqlstate: str, message: str) -> Answer:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            (length,) = struct.unpack("!i", await reader.readexactly(4))
            packet = await reader.readexactly(length - 4)
            if struct.unpack("!i", packet[:4])[0] not in (SSL_REQUEST, GSSENC_REQUEST):
                break  # the startup message
            writer.write(b"N")
        writer.write(error_response(sqlstate, message))
        await writer.drain()

    return answer

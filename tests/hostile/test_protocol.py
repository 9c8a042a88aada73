"""Requests aiohttp refuses before any middleware runs, and a worst-case number sent while
/healthz is probed, against the real `payout-api` process (its own HTTP server)."""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import Iterator

import aiohttp
import orjson
import pytest

from tests.integration.test_api_payouts import PAYOUT
from tests.support import infra as infra_mod
from tests.support.processes import Service, api_service

pytestmark = pytest.mark.e2e
KEY = "sk_hostile_bootstrap_key_0123456789"
MARKER = "HOSTILE-MARKER-7f3a"


@pytest.fixture(scope="module")
def api(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One API process for the module (each test reads only its own log lines)."""
    infra = infra_mod.make_infra(template_db)
    service = api_service(infra.env(API_BOOTSTRAP_KEY=KEY), tmp_path_factory.mktemp("api"))
    service.start()
    yield service
    assert service.stop() == 0, service.log_tail()
    infra_mod.remove_infra(infra)


def raw_request(service: Service, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + MARKER.encode() * 700
                     + b"\r\n\r\n", id="header-too-long"),
        pytest.param(b"GET /" + MARKER.encode() * 700 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                     id="request-line-too-long"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                     + b"".join(b"X-H%d: %s\r\n" % (i, MARKER.encode()) for i in range(200))
                     + b"\r\n", id="too-many-headers"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad\x01" + MARKER.encode()
                     + b": v\r\n\r\n", id="control-character-in-a-header-name"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: " + MARKER.encode()
                     + b"\r\n\r\n", id="bad-content-length"),
    ],
)  # fmt: skip
def test_requests_aiohttp_refuses_are_problems_without_echo_logged_at_warning(
    api: Service, request_bytes: bytes
):
    status, headers, body = raw_request(api, request_bytes)
    assert 400 <= status < 500
    assert headers["content-type"].startswith("application/problem+json")
    problem = orjson.loads(body)
    assert problem["status"] == status and problem["type"] == "/problems/bad-request"
    assert problem["request_id"] == headers["x-request-id"]
    assert MARKER.encode() not in body
    log = api.log_path.read_text()
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    (refused,) = [line for line in lines if line.get("request_id") == problem["request_id"]]
    assert refused["event"] == "http_request_unreadable" and refused["level"] == "warning"
    assert not [line for line in lines if line.get("level") in {"error", "critical"}]
    assert MARKER not in log and "Traceback" not in log


async def test_healthz_answers_within_100ms_while_huge_numbers_are_refused(api: Service):
    """`1e200000` as an amount once blocked the event loop for about a second per request."""
    body = orjson.dumps({**PAYOUT, "amount": "__"}).replace(b'"__"', b"1e200000")
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: list[int] = []
    async with aiohttp.ClientSession() as session:

        async def hostile() -> None:
            for _ in range(40):
                async with session.post(f"{api.url}/api/payouts/", data=body, headers=headers) as r:
                    statuses.append(r.status)

        async def probe() -> None:
            while len(statuses) < 40:
                started = time.monotonic()
                async with session.get(f"{api.url}/healthz") as r:
                    assert r.status == 200
                latencies.append(time.monotonic() - started)

        await asyncio.gather(hostile(), hostile(), probe())
    assert set(statuses) == {422}
    assert len(latencies) >= 10
    # The 90th percentile, so that one scheduling hiccup of a shared CI machine does not
    # decide; a stall of the loop delays nearly every probe.
    p90 = statistics.quantiles(latencies, n=10)[-1]
    assert p90 < 0.100, sorted(latencies)[-5:]

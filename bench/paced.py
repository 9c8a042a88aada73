"""An open-loop client: POST /api/payouts/ at a fixed rate, whatever the responses do.

wrk keeps N requests in flight (closed loop) and Debian has no wrk2, so a fixed arrival rate
comes from this asyncio client: request i is sent at start + i / rate, on its own task, so a
slow response delays nothing else (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import aiohttp


@dataclass
class PacedResult:
    sent: int
    created_ids: list[str] = field(default_factory=list)
    non2xx: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    max_lag_ms: float = 0.0  # how far behind schedule the client itself fell


def payout_body(n: int, run_id: str) -> dict[str, object]:
    return {
        "amount": f"{1 + n % 9999}.{n % 100:02d}",
        "currency": "USD",
        "recipient_details": {"account": "DE89370400440532013000", "name": f"Paced {n}"},
        "description": "bench payout",
        "metadata": {"bench_key": f"{run_id}-{n}"},
    }


async def post_at_fixed_rate(
    base_url: str, api_key: str, *, rate: float, duration_s: float
) -> PacedResult:
    total = int(rate * duration_s)
    result = PacedResult(sent=total)
    run_id = uuid.uuid4().hex[:8]
    headers = {"Authorization": f"Bearer {api_key}"}

    async def one(session: aiohttp.ClientSession, n: int) -> None:
        started = time.perf_counter()
        try:
            async with session.post(
                f"{base_url}/api/payouts/",
                json=payout_body(n, run_id),
                headers={**headers, "Idempotency-Key": f"{run_id}-{n}"},
            ) as response:
                body = await response.json(content_type=None)
                if 200 <= response.status < 300:
                    result.created_ids.append(body["id"])
                else:
                    result.non2xx += 1
        except (aiohttp.ClientError, TimeoutError):
            result.errors += 1
            return
        result.latencies_ms.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        start = time.perf_counter()
        for n in range(total):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                result.max_lag_ms = max(result.max_lag_ms, -delay * 1000)
            tasks.append(asyncio.create_task(one(session, n)))
        await asyncio.gather(*tasks)
    return result

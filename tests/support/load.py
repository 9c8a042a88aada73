"""Creating many payouts through the HTTP API, a bounded number in flight at a time."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

PROBLEM_JSON = "application/problem+json"
NORMAL_ACCOUNT = "DE89370400440532013000"
TIMEOUT_ACCOUNT = "000999999991"  # the provider fails transiently twice, then succeeds
NO_ACCOUNT = "000111111116"  # the provider fails it with no_account
NO_ANSWER = 0  # the status counted when the connection failed (refused, closed mid-request)


def payout_body(account: str = NORMAL_ACCOUNT, amount: str = "10.00") -> dict:
    return {
        "amount": amount,
        "currency": "USD",
        "recipient_details": {"account": account, "name": "Fault Test"},
    }


def mixed_body(i: int) -> dict:
    """Mostly plain payouts, with one in 50 retried (timeouts) and one in 50 failed."""
    account = {0: TIMEOUT_ACCOUNT, 1: NO_ACCOUNT}.get(i % 50, NORMAL_ACCOUNT)
    return payout_body(account, amount=f"{10 + i % 90}.{i % 100:02d}")


@dataclass
class LoadResult:
    created: list[str] = field(default_factory=list)  # ids of the 201s
    statuses: Counter[int] = field(default_factory=Counter)
    # Non-201 answers that are not problem+json (each would be a bug).
    not_problems: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.created) / self.seconds if self.seconds else 0.0


async def create_payouts(
    api_urls: Sequence[str],
    auth: dict[str, str],
    *,
    count: int | None = None,
    stop: asyncio.Event | None = None,
    concurrency: int = 48,
    body: Callable[[int], dict] = lambda _i: payout_body(),
    result: LoadResult | None = None,
    per_second: float | None = None,
) -> LoadResult:
    """POST payouts round-robin over api_urls: `count` requests, or until `stop` is set.

    Pass `result` to watch the answers come in while the load runs; `per_second` paces the
    requests at that steady rate (at most; as fast as `concurrency` allows without it).
    """
    assert count is not None or stop is not None
    result = result if result is not None else LoadResult()
    numbers = itertools.count()
    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            i = next(numbers)
            if per_second is not None:  # request i starts i / per_second into the run
                await asyncio.sleep(max(0.0, started + i / per_second - time.perf_counter()))
            if (count is not None and i >= count) or (stop is not None and stop.is_set()):
                return
            url = f"{api_urls[i % len(api_urls)]}/api/payouts/"
            try:
                async with session.post(url, json=body(i), headers=auth) as resp:
                    result.statuses[resp.status] += 1
                    if resp.status == 201:
                        result.created.append((await resp.json())["id"])
                    elif resp.content_type != PROBLEM_JSON:
                        result.not_problems.append((resp.status, (await resp.text())[:200]))
            except aiohttp.ClientConnectionError:
                result.statuses[NO_ANSWER] += 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result

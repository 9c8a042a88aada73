"""A REST client as real ones behave: a steady rate of payouts, every one with its own
Idempotency-Key, retried with that key on 5xx, on 429 (rate-limited: after its Retry-After),
on 409 idempotency-key-in-use and on timeouts or dropped connections, over the API processes
it is given (a load balancer's endpoints)."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from tests.support.load import mixed_body

NO_ANSWER = 0  # a timeout, a refused or dropped connection
MAX_CATCH_UP_S = 1.0  # a starved event loop makes up at most this much of the schedule
MAX_BACKOFF_S = 5.0
RETRIED_CONFLICT = "idempotency-key-in-use"
RATE_LIMITED = 429


@dataclass
class Answer:
    at: float  # time.monotonic() when it came
    status: int
    seconds: float  # how long the client waited for it


@dataclass
class ClientRecord:
    """Everything the client saw: which keys got a payout, and every answer."""

    accepted: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> payout id
    accepted_at: list[tuple[float, str]] = field(default_factory=list)  # (when, payout id)
    gave_up: list[str] = field(default_factory=list)  # keys never accepted
    errors: list[Answer] = field(default_factory=list)  # every non-2xx answer
    answers: int = 0
    started: float = 0.0
    stopped: float = 0.0
    # Answers that are not retried by a real client (a 4xx other than 429 and in-use): a bug.
    unexpected: list[tuple[int, str]] = field(default_factory=list)

    def errors_by_status(self, since: float = 0.0) -> Counter[int]:
        return Counter(a.status for a in self.errors if a.at >= since)

    @property
    def rate(self) -> float:
        return len(self.accepted) / max(self.stopped - self.started, 1e-9)


class RetryingClient:
    def __init__(
        self,
        endpoints: list[str],
        api_key: str,
        *,
        rate: float = 110.0,
        request_timeout_s: float = 10.0,
        give_up_after_s: float = 240.0,
        max_in_flight: int = 800,
    ) -> None:
        self.endpoints = list(endpoints)
        self.auth = {"Authorization": f"Bearer {api_key}"}
        self.rate = rate
        self.request_timeout_s = request_timeout_s
        self.give_up_after_s = give_up_after_s
        self.slots = asyncio.Semaphore(max_in_flight)
        self.record = ClientRecord()
        self._numbers = itertools.count()
        self._turn = itertools.count()

    def without(self, endpoint: str) -> None:
        """Take an API process out of rotation (what a Service does once its pod terminates)."""
        self.endpoints.remove(endpoint)

    def with_(self, endpoint: str) -> None:
        self.endpoints.append(endpoint)

    async def run(self, stop: asyncio.Event) -> ClientRecord:
        """Create payouts at `rate` per second until `stop`; then wait for every key's answer."""
        record = self.record
        record.started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self.request_timeout_s)
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            next_at = time.monotonic()
            while not stop.is_set():
                await self.slots.acquire()
                task = asyncio.create_task(self._one(session, next(self._numbers)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                next_at += 1 / self.rate
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -MAX_CATCH_UP_S:
                    next_at = time.monotonic() - MAX_CATCH_UP_S  # a bounded burst to catch up
            record.stopped = time.monotonic()
            if tasks:
                await asyncio.gather(*tasks)
        return record

    async def _one(self, session: aiohttp.ClientSession, number: int) -> None:
        key = f"ha-{uuid.uuid4()}"
        body = mixed_body(number)
        deadline = time.monotonic() + self.give_up_after_s
        backoff = 0.2
        try:
            while time.monotonic() < deadline:
                payout_id, retry = await self._attempt(session, key, body)
                if payout_id is not None:
                    self.record.accepted[key] = payout_id
                    self.record.accepted_at.append((time.monotonic(), payout_id))
                    return
                if retry is None:
                    return
                # Retry-After when the server gave one, else exponential backoff with jitter.
                await asyncio.sleep(max(retry, backoff * random.uniform(0.5, 1.0)))
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            self.record.gave_up.append(key)
        finally:
            self.slots.release()

    async def _attempt(
        self, session: aiohttp.ClientSession, key: str, body: dict
    ) -> tuple[str | None, float | None]:
        """(the payout id, or None and the Retry-After to honour; None: do not retry)."""
        endpoint = self.endpoints[next(self._turn) % len(self.endpoints)]
        started = time.monotonic()
        headers = {**self.auth, "Idempotency-Key": key}
        try:
            async with session.post(f"{endpoint}/api/payouts/", json=body, headers=headers) as r:
                self.record.answers += 1
                if r.status in (200, 201):
                    return str((await r.json())["id"]), None
                text = await r.text()
                self._error(started, r.status)
                retried = r.status >= 500 or r.status == RATE_LIMITED
                if retried or (r.status == 409 and RETRIED_CONFLICT in text):
                    return None, _seconds(r.headers.get("Retry-After"))
                self.record.unexpected.append((r.status, text[:200]))
                return None, None
        except (aiohttp.ClientError, TimeoutError):
            self._error(started, NO_ANSWER)
            return None, 0.0

    def _error(self, started: float, status: int) -> None:
        now = time.monotonic()
        self.record.errors.append(Answer(now, status, now - started))


def _seconds(retry_after: str | None) -> float:
    try:
        return min(float(retry_after or 0), MAX_BACKOFF_S)
    except ValueError:
        return 0.0

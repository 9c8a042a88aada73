"""Concurrent calls coalesced into one statement (group commit in the client).

Each payout in flight makes the same few statements; a round trip and a commit cost more than
the row they write. A call joins the batch being gathered while the previous one is in flight;
the next batch takes every waiting call, so a lone call goes at once (no added delay) and a
busy processor writes many payouts per round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from opentelemetry.trace import Span

from payout_core.tracing import batch_span, caller_span

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 100


class Batcher(Generic[Item, Result]):
    """submit(item) -> run([items...])[i]; one run at a time.

    `key(item)` never repeats within a batch (a repeat waits for the next one), so a batch
    touches each row once.
    """

    def __init__(
        self,
        run: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        key: Callable[[Item], Hashable],
        max_batch: int = MAX_BATCH,
        name: str = "batch",
    ) -> None:
        self._run = run
        self._key = key
        self._max = max_batch
        self._name = name  # of the batch's span, linked to each caller's (payout_core.tracing)
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._callers: dict[asyncio.Future[Result], Span | None] = {}
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        caller = caller_span()
        if caller is not None:
            self._callers[future] = caller
        if self._task is None:
            self._task = asyncio.create_task(self._run_batches())
        return await future

    def _next_batch(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        batch: list[tuple[Item, asyncio.Future[Result]]]
        batch, later, keys = [], [], set()
        for entry in self._waiting:
            key = self._key(entry[0])
            if len(batch) < self._max and key not in keys and not entry[1].cancelled():
                keys.add(key)
                batch.append(entry)
            elif not entry[1].cancelled():
                later.append(entry)
        self._waiting = later
        return batch

    async def _run_batches(self) -> None:
        try:
            while self._waiting:
                batch = self._next_batch()
                if not batch:
                    continue
                callers = [self._callers.pop(future, None) for _, future in batch]
                try:
                    with batch_span(self._name, callers):
                        results = await self._run([item for item, _ in batch])
                except asyncio.CancelledError:
                    for _, future in batch + self._waiting:
                        future.cancel()
                    self._waiting = []
                    raise
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._task = None
            self._callers.clear()

"""Outbox relay: publishes committed outbox rows to RabbitMQ and marks them published.

Woken right after each commit (low latency) and on a timer (sweeps whatever a crash or a
broker outage left behind). Rows are claimed with FOR UPDATE SKIP LOCKED and marked published
in the same statement, committed once the broker has confirmed them all, so any number of API
replicas can run a relay; a batch's confirms are awaited together. A second task refreshes
the outbox gauges every second, whatever the publishing loop is doing. Published rows are
pruned by housekeeping (payout_core.housekeeping), one runner for all replicas.
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.tables import outbox
from payout_core.logging import get_logger
from payout_core.messaging.broker import Broker, OutgoingMessage
from payout_core.messaging.contracts import EXCHANGE, HEADER_REQUEST_ID
from payout_core.metrics import ApiMetrics
from payout_core.tracing import batch_span, context_from, ending, start_publish

log = get_logger(__name__)
STATS_EVERY_S = 1.0


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        broker: Broker,
        metrics: ApiMetrics,
        *,
        poll_interval_s: float = 1.0,
        batch_size: int = 500,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._engine = engine
        self._broker = broker
        self._metrics = metrics
        self._poll = poll_interval_s
        self._batch = batch_size
        self._max_backoff = max_backoff_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._stats_task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")
        self._stats_task = asyncio.create_task(self._refresh_stats_forever(), name="outbox-stats")

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Publish what is committed (bounded), then stop."""
        self._stopping = True
        self._wake.set()
        if self._stats_task is not None:
            self._stats_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stats_task
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), drain_timeout)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            # Read before the pass: a pass that starts after stop() (so after the last request
            # has committed) publishes everything; ending after an earlier one could strand
            # rows committed while it ran.
            last_pass = self._stopping
            self._wake.clear()  # a notify() from here on makes the next wait return at once
            try:
                while await self.publish_once() == self._batch:
                    pass
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._metrics.publish_failures.inc()
                log.warning("outbox_publish_failed", error=str(exc)[:300], retry_in_s=backoff)
                if self._stopping:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if last_pass:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)

    async def publish_once(self) -> int:
        """Publish one batch; the number of rows published.

        With rows waiting and the broker away, publish_batch raises BrokerUnavailable: that
        counts as a publish failure, so an outage shows on the dashboard, not only as age.
        """
        async with self._engine.begin() as conn:
            # Claimed and marked in one statement; the mark commits only after every confirm
            # (an error or a crash before then rolls it back: the rows are published again).
            unpublished = (
                sa.select(outbox.c.id)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.id)
                .limit(self._batch)
                .with_for_update(skip_locked=True)
            )
            claimed = await conn.execute(
                outbox.update()
                .where(outbox.c.id.in_(unpublished))
                .values(published_at=sa.func.now())
                .returning(
                    outbox.c.id,
                    outbox.c.message_id,
                    outbox.c.routing_key,
                    outbox.c.payload,
                    outbox.c.headers,
                )
            )
            rows = sorted(claimed.all(), key=lambda row: row.id)  # RETURNING has no order
            if not rows:
                return 0
            # Each message is published in the trace of the request that created its payout
            # (stored with the row); the batch is a span of its own, linked to those traces.
            request_contexts = [context_from(row.headers) for row in rows]
            with batch_span("outbox publish", request_contexts):
                messages, spans = [], []
                for row, request_context in zip(rows, request_contexts, strict=True):
                    span, trace_headers = start_publish(
                        EXCHANGE,
                        row.routing_key,
                        row.message_id,
                        parent=request_context,
                        payout_id=row.payload.get("payout_id"),
                    )
                    spans.append(span)
                    request_id = str(row.headers.get(HEADER_REQUEST_ID, ""))
                    messages.append(
                        OutgoingMessage(
                            routing_key=row.routing_key,
                            body=orjson.dumps(row.payload),
                            message_id=row.message_id,
                            headers={HEADER_REQUEST_ID: request_id, **trace_headers},
                        )
                    )
                with ending(spans):
                    await self._broker.publish_batch(messages)
        self._metrics.published.inc(len(rows))
        log.debug("outbox_published", count=len(rows))
        return len(rows)

    async def _refresh_stats_forever(self) -> None:
        while True:
            try:
                await self.refresh_stats()
            except Exception as exc:  # database away: the gauges keep their last values
                log.debug("outbox_stats_failed", error=str(exc)[:200])
            await asyncio.sleep(STATS_EVERY_S)

    async def refresh_stats(self) -> None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(
                        sa.func.count(),
                        sa.func.coalesce(
                            sa.func.extract(
                                "epoch", sa.func.now() - sa.func.min(outbox.c.created_at)
                            ),
                            0,
                        ),
                    ).where(outbox.c.published_at.is_(None))
                )
            ).one()
        self._metrics.outbox_pending.set(row[0])
        self._metrics.outbox_oldest_age.set(float(row[1]))

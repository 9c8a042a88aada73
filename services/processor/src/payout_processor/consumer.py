"""The RabbitMQ side of the processor: consume, process, then ack (after the commit).

Outages are deferred, never counted: while PostgreSQL is unreachable or the provider's answer
is in doubt (timeout, reset, 5xx, refused) the message goes to a delay queue with its attempt
number unchanged, so an outage of any length delays payouts and fails none. Other errors (our
own) go to a delay queue for the next attempt (exponential backoff through TTL +
dead-lettering back to the work queue); after the last attempt the give-up lets the
provider's record decide and the message is dead-lettered to payouts.dead (while even that
cannot be recorded, the message waits out the longest delay again, for the give-up alone).
Malformed messages are dead-lettered at once. The quorum queue's delivery-limit catches
anything else that loops.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from payout_core.db.errors import is_database_unavailable
from payout_core.logging import get_logger
from payout_core.messaging.broker import Broker, OutgoingMessage
from payout_core.messaging.contracts import (
    HEADER_ATTEMPT,
    HEADER_REQUEST_ID,
    MalformedMessage,
    PayoutCreated,
    retry_delays_ms,
    retry_queue_name,
)
from payout_core.metrics import ProcessorMetrics
from payout_core.provider_client import ProviderInDoubt
from payout_core.tracing import annotate_payout, end_all, process_span, record_error, start_publish
from payout_processor.channels import consumer_channel
from payout_processor.draining import InFlight, drain
from payout_processor.processing import UNKNOWN, CallMayBeInFlight, PayoutProcessor

log = get_logger(__name__)
# How many times a message was deferred by an outage (picks the delay; attempts stay as they are).
HEADER_DEFERRALS = "x-deferrals"


class PayoutConsumer:
    def __init__(
        self,
        broker: Broker,
        processor: PayoutProcessor,
        metrics: ProcessorMetrics,
        *,
        concurrency: int,
        prefetch: int,
        max_attempts: int,
        retry_base_ms: int,
    ) -> None:
        self._broker = broker
        self._processor = processor
        self._metrics = metrics
        self._slots = asyncio.Semaphore(concurrency)
        self._prefetch = prefetch
        self._max_attempts = max_attempts
        self._delays = retry_delays_ms(retry_base_ms, max_attempts)
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._in_flight = InFlight()

    async def start(self) -> None:
        async with consumer_channel(self._broker, self._prefetch) as channel:
            self._queue = await channel.get_queue(self._broker.topology.process_queue.name)
            self._tag = await self._queue.consume(self.on_message)
        log.info("consumer_started", prefetch=self._prefetch)

    async def stop(self, grace_s: float) -> None:
        """Stop taking messages, let in-flight ones finish within the grace period."""
        tag, self._tag = self._tag, None
        await drain(self._queue, tag, self._in_flight, grace_s, consumer="payouts")

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        with self._in_flight.handling(), self._metrics.inflight.track_inprogress():
            async with self._slots:
                queue = self._queue.name if self._queue is not None else ""
                with process_span(
                    queue, message.routing_key or "", message.message_id, message.headers
                ):
                    await self._handle(message)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        headers = message.headers or {}
        request_id = str(headers.get(HEADER_REQUEST_ID) or "") or None
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            event = PayoutCreated.from_body(message.body)
        except MalformedMessage as exc:
            record_error(exc)
            log.error("message_malformed", error=str(exc), message_id=message.message_id)
            self._metrics.messages.labels(outcome="malformed").inc()
            await message.reject(requeue=False)  # dead-lettered to payouts.dead
            return
        structlog.contextvars.bind_contextvars(payout_id=str(event.payout_id))
        annotate_payout(event.payout_id)
        attempt = _attempt(headers)
        log.debug(
            "message_received",
            attempt=attempt,
            redelivered=message.redelivered,
            message_id=message.message_id,
        )
        if attempt > self._max_attempts:  # attempts used up earlier; only the give-up is left
            await self._give_up(message, event, attempt, request_id)
            return
        started = time.perf_counter()
        try:
            outcome = await self._processor.process(event.payout_id, request_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            record_error(exc)
            if isinstance(exc, ProviderInDoubt) or is_database_unavailable(exc):
                await self._defer(message, event, attempt, request_id, exc)
            else:
                await self._retry_or_give_up(message, event, attempt, request_id, exc)
            return
        finally:
            self._metrics.processing_duration.observe(time.perf_counter() - started)
        if outcome.name == UNKNOWN:
            log.error("message_for_unknown_payout")
            self._metrics.messages.labels(outcome="malformed").inc()
            await message.reject(requeue=False)
            return
        await message.ack()
        self._metrics.messages.labels(outcome=outcome.name).inc()
        log.info("payout_" + outcome.name, failure_code=outcome.failure_code, attempt=attempt)

    async def _defer(
        self,
        message: AbstractIncomingMessage,
        event: PayoutCreated,
        attempt: int,
        request_id: str | None,
        error: Exception,
    ) -> None:
        """Try again later without using up an attempt: the backoff grows with the deferrals
        up to the longest delay and stays there for as long as the outage lasts."""
        deferrals = _count(message.headers or {}, HEADER_DEFERRALS, 0)
        reason = getattr(error, "reason", "database_unavailable")
        log.warning(
            "payout_deferred",
            reason=reason,
            attempt=attempt,
            deferrals=deferrals + 1,
            error=str(error)[:300],
        )
        self._metrics.deferrals.labels(reason=reason).inc()
        if not self._delays:
            await message.nack(requeue=True)
            return
        delay_ms = self._delays[min(deferrals, len(self._delays) - 1)]
        if await self._retry_later(
            message, event, request_id, attempt, delay_ms, deferrals=deferrals + 1
        ):
            self._metrics.messages.labels(outcome="deferred").inc()

    async def _retry_or_give_up(
        self,
        message: AbstractIncomingMessage,
        event: PayoutCreated,
        attempt: int,
        request_id: str | None,
        error: Exception,
    ) -> None:
        if attempt < self._max_attempts:
            delay_ms = self._delays[attempt - 1]
            log.warning(
                "payout_retry_scheduled",
                attempt=attempt,
                retry_in_ms=delay_ms,
                error=str(error)[:300],
                error_type=type(error).__name__,
            )
            if await self._retry_later(message, event, request_id, attempt + 1, delay_ms):
                self._metrics.messages.labels(outcome="retried").inc()
            return
        log.error("payout_attempts_exhausted", attempt=attempt, error=str(error)[:300])
        await self._give_up(message, event, attempt, request_id)

    async def _give_up(
        self,
        message: AbstractIncomingMessage,
        event: PayoutCreated,
        attempt: int,
        request_id: str | None,
    ) -> None:
        try:
            outcome = await self._processor.give_up(event.payout_id, request_id)
        except Exception as exc:
            # Not decided yet (a call may be open) or not even recorded (database down): the
            # message comes back after the longest backoff, past the last attempt, for the
            # give-up alone. A plain requeue would spin until the delivery limit dead-lettered
            # it, leaving the payout to the reconciler.
            if isinstance(exc, CallMayBeInFlight):
                log.info("give_up_postponed", reason=str(exc))
            else:
                log.warning("give_up_failed", error=str(exc)[:300])
            if self._delays:
                await self._retry_later(
                    message, event, request_id, self._max_attempts + 1, self._delays[-1]
                )
            else:
                await message.nack(requeue=True)
            return
        await message.reject(requeue=False)  # dead-lettered to payouts.dead
        self._metrics.messages.labels(outcome="dead_lettered").inc()
        log.error(
            "payout_dead_lettered",
            outcome=outcome.name,
            failure_code=outcome.failure_code,
            attempt=attempt,
        )

    async def _retry_later(
        self,
        message: AbstractIncomingMessage,
        event: PayoutCreated,
        request_id: str | None,
        attempt: int,
        delay_ms: int,
        *,
        deferrals: int = 0,
    ) -> bool:
        """Send the message through the delay queue as `attempt`, then ack this delivery; if
        that cannot be published, hand the message back to the queue. True when delayed."""
        message_id = message.message_id or str(event.payout_id)
        # Published from this message's process span: the next attempt stays in the trace.
        span, trace_headers = start_publish(
            "", retry_queue_name(delay_ms), message_id, payout_id=event.payout_id
        )
        try:
            await self._broker.publish_batch(
                [
                    OutgoingMessage(
                        routing_key=retry_queue_name(delay_ms),
                        body=message.body,
                        message_id=message_id,
                        headers={
                            HEADER_REQUEST_ID: request_id or "",
                            HEADER_ATTEMPT: str(attempt),
                            HEADER_DEFERRALS: str(deferrals),
                            **trace_headers,
                        },
                        exchange="",
                    )
                ]
            )
        except Exception as exc:
            end_all([span], exc)
            log.warning("retry_publish_failed", error=str(exc)[:300])
            await message.nack(requeue=True)
            return False
        end_all([span])
        await message.ack()
        return True


def _count(headers: dict[str, Any], name: str, default: int) -> int:
    try:
        return max(default, int(str(headers.get(name, default))))
    except ValueError:
        return default


def _attempt(headers: dict[str, Any]) -> int:
    return _count(headers, HEADER_ATTEMPT, 1)

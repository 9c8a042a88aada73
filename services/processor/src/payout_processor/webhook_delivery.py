"""Webhook deliveries: the processor's second consumer, on `payouts.webhooks`, with its own
channel, prefetch and WEBHOOK_CONCURRENCY, so a slow receiver never holds up payouts.

A fan-out order (an event) becomes one order per matching enabled endpoint; an endpoint order
is one signed POST. A failed attempt is recorded, then waits in the durable delay queue of its
step of WEBHOOK_RETRY_SCHEDULE_S; the message is acked only after that (at least once: a crash
before the ack delivers again, with the same webhook-id)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import sqlalchemy as sa
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.engine import autocommit
from payout_core.db.tables import webhook_attempts, webhook_endpoints, webhook_events
from payout_core.logging import get_logger
from payout_core.messaging.broker import Broker, OutgoingMessage
from payout_core.messaging.contracts import HEADER_ATTEMPT, MalformedMessage
from payout_core.metrics import ProcessorMetrics
from payout_core.settings import Settings
from payout_core.tracing import (
    ATTR_PAYOUT_ID,
    ending,
    http_client_trace_configs,
    process_span,
    record_error,
    span,
    start_publish,
)
from payout_core.webhooks.events import event_body, matches, public_event_id
from payout_core.webhooks.queues import (
    WEBHOOK_QUEUE,
    DeliveryOrder,
    declare_delay_queues,
    delay_queue_name,
)
from payout_core.webhooks.secrets import SecretBox
from payout_core.webhooks.signing import signed_headers
from payout_core.webhooks.urls import GuardedResolver, UnsafeUrl, check_url
from payout_processor.channels import consumer_channel
from payout_processor.draining import InFlight, drain

log = get_logger(__name__)
# Bytes of a receiver's answer read (and dropped): enough to finish a small response.
RESPONSE_READ_LIMIT = 4096
ERROR_LENGTH = 300


class WebhookAttemptFailed(Exception):
    """A failed attempt, as recorded on its delivery span (not raised)."""


@dataclass(frozen=True)
class Attempt:
    succeeded: bool
    status: int | None
    error: str | None
    duration_s: float


class WebhookDeliverer:
    def __init__(
        self,
        engine: AsyncEngine,
        broker: Broker,
        metrics: ProcessorMetrics,
        settings: Settings,
        secrets: SecretBox,
    ) -> None:
        self._engine = engine
        self._broker = broker
        self._metrics = metrics
        self._settings = settings
        self._secrets = secrets
        self._schedule = settings.webhook_retry_schedule_s
        self._disable_after = timedelta(seconds=settings.webhook_disable_after_s)
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._queue: AbstractQueue | None = None
        self._delay_queues: list[AbstractQueue] = []
        self._tag: str | None = None
        self._in_flight = InFlight()

    def open_session(self) -> None:
        """The HTTP client: its resolver refuses non-public addresses unless allowed."""
        allow_private = self._settings.webhook_allow_private_urls
        connector = aiohttp.TCPConnector(
            limit=self._settings.webhook_concurrency,
            resolver=None if allow_private else GuardedResolver(),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._settings.webhook_timeout_s),
            auto_decompress=False,
            # A client span per POST, and its traceparent sent to the receiver (tracing on).
            trace_configs=http_client_trace_configs(),
        )

    async def start(self) -> None:
        self.open_session()
        prefetch = self._settings.webhook_concurrency * 2
        async with consumer_channel(self._broker, prefetch) as channel:
            self._delay_queues = await declare_delay_queues(channel, self._schedule)
            self._queue = await channel.get_queue(WEBHOOK_QUEUE)
            self._tag = await self._queue.consume(self.on_message)
        log.info("webhook_consumer_started", concurrency=self._settings.webhook_concurrency)

    async def stop(self, grace_s: float) -> None:
        tag, self._tag = self._tag, None
        await drain(self._queue, tag, self._in_flight, grace_s, consumer="webhooks")
        if self._session is not None:
            await self._session.close()

    async def refresh_stats(self) -> None:
        """payout_webhook_pending (orders queued or waiting for a retry) and how long the
        longest-failing enabled endpoint has failed."""
        queues = [self._queue, *self._delay_queues] if self._queue is not None else []
        total = 0
        for queue in queues:
            total += (await queue.declare()).message_count or 0
        self._metrics.webhook_pending.set(total)
        ep = webhook_endpoints.c
        async with autocommit(self._engine) as conn:
            age = await conn.scalar(
                sa.select(
                    sa.func.coalesce(
                        sa.func.extract("epoch", sa.func.now() - sa.func.min(ep.failing_since)), 0
                    )
                ).where(ep.status == "enabled")
            )
        self._metrics.webhook_failing_endpoint_age.set(float(age or 0))

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        with self._in_flight.handling():
            async with self._slots:
                # In the trace of the status change that wrote the event (its outbox row's).
                with process_span(
                    WEBHOOK_QUEUE, message.routing_key or "", message.message_id, message.headers
                ):
                    await self._handle(message)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            order = DeliveryOrder.from_body(message.body)
        except MalformedMessage as exc:
            log.error("webhook_order_malformed", error=str(exc))
            await message.reject(requeue=False)
            return
        attempt = _attempt(message)
        try:
            if order.endpoint_id is None:
                await self._fan_out(order.event_id)
            else:
                await self._deliver(order.event_id, order.endpoint_id, attempt)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database or the broker away: try again after a wait
            log.warning("webhook_order_deferred", error=str(exc)[:ERROR_LENGTH])
            try:
                await self._publish_delayed(order, attempt, self._schedule[0])
            except Exception:
                await message.nack(requeue=True)
                return
        await message.ack()

    async def _fan_out(self, event_id: uuid.UUID) -> None:
        async with autocommit(self._engine) as conn:
            event = (
                await conn.execute(
                    sa.select(webhook_events.c.client_id, webhook_events.c.type).where(
                        webhook_events.c.id == event_id
                    )
                )
            ).first()
            if event is None:  # pruned
                return
            endpoints = (
                await conn.execute(
                    sa.select(webhook_endpoints.c.id, webhook_endpoints.c.enabled_events).where(
                        webhook_endpoints.c.client_id == event.client_id,
                        webhook_endpoints.c.status == "enabled",
                    )
                )
            ).all()
        orders = [
            DeliveryOrder(event_id, endpoint.id)
            for endpoint in endpoints
            if matches(endpoint.enabled_events, event.type)
        ]
        if orders:
            await self._publish([(order, 1, WEBHOOK_QUEUE) for order in orders])

    async def _deliver(self, event_id: uuid.UUID, endpoint_id: uuid.UUID, attempt: int) -> None:
        async with autocommit(self._engine) as conn:
            event = (
                (
                    await conn.execute(
                        sa.select(webhook_events).where(webhook_events.c.id == event_id)
                    )
                )
                .mappings()
                .first()
            )
            endpoint = (
                (
                    await conn.execute(
                        sa.select(
                            webhook_endpoints,
                            (webhook_endpoints.c.previous_secret_expires_at > sa.func.now()).label(
                                "previous_signs"
                            ),
                        ).where(webhook_endpoints.c.id == endpoint_id)
                    )
                )
                .mappings()
                .first()
            )
        if event is None or endpoint is None or endpoint["status"] != "enabled":
            return  # pruned, deleted or disabled since: nothing to deliver
        secrets = [self._secrets.open(endpoint["secret"])]
        if endpoint["previous_signs"] and endpoint["previous_secret"]:
            secrets.append(self._secrets.open(endpoint["previous_secret"]))
        attributes = {
            ATTR_PAYOUT_ID: str(event["payout_id"]),
            "webhook.event.id": public_event_id(event_id),
            "webhook.event.type": event["type"],
            "webhook.endpoint.id": str(endpoint_id),
            "webhook.attempt": attempt,
        }
        with span("webhook delivery", attributes=attributes):
            result = await self.post(
                endpoint["url"], public_event_id(event_id), event_body(event), secrets
            )
            if not result.succeeded:
                record_error(WebhookAttemptFailed(result.error or "failed"))
        self._metrics.webhook_deliveries.labels(
            outcome="succeeded" if result.succeeded else "failed"
        ).inc()
        self._metrics.webhook_duration.observe(result.duration_s)
        disabled = await self._record(endpoint_id, event, attempt, result)
        log.info(
            "webhook_attempt",
            event_id=public_event_id(event_id),
            endpoint_id=str(endpoint_id),
            attempt=attempt,
            succeeded=result.succeeded,
            status=result.status,
            error=result.error,
        )
        if result.succeeded or disabled:
            return
        if attempt <= len(self._schedule):
            await self._publish_delayed(
                DeliveryOrder(event_id, endpoint_id), attempt + 1, self._schedule[attempt - 1]
            )
        else:
            self._metrics.webhook_deliveries.labels(outcome="given_up").inc()

    async def post(self, url: str, msg_id: str, body: bytes, secrets: list[str]) -> Attempt:
        assert self._session is not None
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            check_url(url, allow_private=self._settings.webhook_allow_private_urls)
            headers = signed_headers(msg_id, datetime.now(UTC), body, secrets)
            async with self._session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                await response.content.read(RESPONSE_READ_LIMIT)
        except TimeoutError:
            error = f"no answer within {self._settings.webhook_timeout_s:g} s"
        except UnsafeUrl as exc:
            error = f"refused: {exc}"
        except (aiohttp.ClientError, OSError) as exc:
            # GuardedResolver's refusal arrives wrapped in a ClientConnectorError.
            error = f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]
        succeeded = status is not None and 200 <= status < 300
        if status is not None and not succeeded:
            error = f"HTTP {status}"
        return Attempt(succeeded, status, error, time.perf_counter() - started)

    async def _record(
        self, endpoint_id: uuid.UUID, event: Any, attempt: int, result: Attempt
    ) -> bool:
        """The attempt and the endpoint's health in one transaction; True if this disabled it."""
        ep = webhook_endpoints.c
        async with self._engine.begin() as conn:
            await conn.execute(
                webhook_attempts.insert().values(
                    endpoint_id=endpoint_id,
                    event_id=event["id"],
                    event_type=event["type"],
                    attempt=attempt,
                    duration_ms=round(result.duration_s * 1000),
                    response_status=result.status,
                    error=result.error,
                    succeeded=result.succeeded,
                )
            )
            if result.succeeded:
                await conn.execute(
                    webhook_endpoints.update()
                    .where(ep.id == endpoint_id, ep.failing_since.isnot(None))
                    .values(failing_since=None)
                )
                return False
            await conn.execute(
                webhook_endpoints.update()
                .where(ep.id == endpoint_id, ep.failing_since.is_(None))
                .values(failing_since=sa.func.now())
            )
            disabled = await conn.scalar(
                webhook_endpoints.update()
                .where(
                    ep.id == endpoint_id,
                    ep.status == "enabled",
                    ep.failing_since < sa.func.now() - self._disable_after,
                )
                .values(
                    status="disabled",
                    disabled_reason="failing",
                    updated_at=sa.func.now(),
                )
                .returning(ep.id)
            )
        if disabled is not None:
            log.warning("webhook_endpoint_disabled", endpoint_id=str(endpoint_id))
        return disabled is not None

    async def _publish_delayed(self, order: DeliveryOrder, attempt: int, delay_s: float) -> None:
        await self._publish([(order, attempt, delay_queue_name(delay_s))])

    async def _publish(self, sends: list[tuple[DeliveryOrder, int, str]]) -> None:
        """Orders (order, attempt, queue), each published from the current span: the next
        delivery or retry stays in the event's trace."""
        messages, spans = [], []
        for order, attempt, queue in sends:
            message_id = f"{order.event_id}:{order.endpoint_id}"
            publish, trace_headers = start_publish("", queue, message_id)
            spans.append(publish)
            messages.append(
                OutgoingMessage(
                    routing_key=queue,
                    body=order.to_body(),
                    message_id=message_id,
                    headers={HEADER_ATTEMPT: str(attempt), **trace_headers},
                    exchange="",
                )
            )
        with ending(spans):
            await self._broker.publish_batch(messages)


def _attempt(message: AbstractIncomingMessage) -> int:
    try:
        return max(1, int(str((message.headers or {}).get(HEADER_ATTEMPT, 1))))
    except ValueError:
        return 1

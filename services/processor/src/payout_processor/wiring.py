"""The processor's wiring: on the shared resources (database, broker: payout_core.bootstrap),
the provider client, consumer, webhook deliverer, reconciler, housekeeping, gauges and the
small HTTP server for health and metrics. `bootstrap()` builds it; `start()`/`stop()` run it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aio_pika.exceptions
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core import unfinished_gauge
from payout_core.bootstrap import build_resources
from payout_core.housekeeping import Retention, housekeep_once
from payout_core.http_observability import observe_requests
from payout_core.logging import get_logger
from payout_core.messaging.broker import Broker, cancelled_from_outside
from payout_core.messaging.contracts import retry_delays_ms
from payout_core.metrics import ProcessorMetrics
from payout_core.ops_http import healthz, metrics_response, readiness
from payout_core.provider_client import ProviderClient
from payout_core.reconcile import reconcile_once
from payout_core.settings import Settings
from payout_core.webhooks.secrets import SecretBox
from payout_processor.consumer import PayoutConsumer
from payout_processor.processing import PayoutProcessor
from payout_processor.statements import ProcessingStatements
from payout_processor.webhook_delivery import WebhookDeliverer

log = get_logger(__name__)
QUEUE_STATS_EVERY_S = 5.0
# What opening a channel raises when the broker connection is lost meanwhile (or how it hangs:
# a channel asked of a connection that is reconnecting may never open). aio-pika raises a bare
# RuntimeError for a channel or connection closed under it ("Can't initialize closed channel").
CONNECTION_LOST = (aio_pika.exceptions.AMQPException, aio_pika.exceptions.ChannelInvalidStateError,
                   ConnectionError, TimeoutError, RuntimeError)  # fmt: skip
CONSUMER_START_TIMEOUT_S = 10.0


async def start_when_connected(start: Callable[[], Awaitable[None]], what: str) -> None:
    """Start a consumer; if the broker connection is lost while it opens its channel (the
    broker went away as the process started), wait for the robust connection to come back
    and try again, instead of crashing the process."""
    delay = 0.1
    while True:
        try:
            await asyncio.wait_for(start(), CONSUMER_START_TIMEOUT_S)
            return
        except CONNECTION_LOST as exc:
            error = type(exc).__name__
        except asyncio.CancelledError:
            if cancelled_from_outside():  # SIGTERM while starting
                raise
            error = "CancelledError"
        log.warning("consumer_start_retrying", consumer=what, error=error)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


@dataclass
class ProcessorService:
    settings: Settings
    engine: AsyncEngine
    broker: Broker
    metrics: ProcessorMetrics
    consumer: PayoutConsumer
    provider: ProviderClient
    webhooks: WebhookDeliverer
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        self.broker.start()
        self.runner = web.AppRunner(self._http_app(), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.settings.bind_host, self.settings.processor_http_port)
        await site.start()
        await start_when_connected(self.consumer.start, "payouts")
        await start_when_connected(self.webhooks.start, "webhooks")
        self.tasks = [
            asyncio.create_task(self._reconcile_forever(), name="reconciler"),
            asyncio.create_task(self._queue_stats_forever(), name="queue-stats"),
            asyncio.create_task(self._housekeeping_forever(), name="housekeeping"),
            asyncio.create_task(self._webhook_stats_forever(), name="webhook-stats"),
        ]
        log.info("processor_started", http_port=self.settings.processor_http_port)

    async def stop(self) -> None:
        await asyncio.gather(
            self.consumer.stop(self.settings.shutdown_grace_s),
            self.webhooks.stop(self.settings.shutdown_grace_s),
        )
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.broker.close()
        await self.provider.close()
        if self.runner is not None:
            await self.runner.cleanup()
        await self.engine.dispose()
        log.info("processor_stopped")

    def _http_app(self) -> web.Application:
        app = web.Application(middlewares=[observe_requests(self.metrics)])

        async def readyz(_request: web.Request) -> web.Response:
            return await readiness(self.engine, self.broker)

        async def metrics(_request: web.Request) -> web.Response:
            return metrics_response(self.metrics)

        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
        app.router.add_get("/metrics", metrics)
        return app

    async def _reconcile_forever(self) -> None:
        settings = self.settings
        while True:
            await asyncio.sleep(settings.reconcile_interval_s)
            try:
                await reconcile_once(
                    self.engine,
                    self.broker,
                    self.provider,
                    settings.reconcile_stuck_after_s,
                    max_reenqueues=settings.reconcile_max_reenqueues,
                    metrics=self.metrics,
                )
                await unfinished_gauge.refresh(
                    self.engine, self.metrics, settings.reconcile_stuck_after_s
                )
            except Exception as exc:
                log.warning("reconcile_failed", error=str(exc)[:300])

    async def _housekeeping_forever(self) -> None:
        settings = self.settings
        retention = Retention(
            outbox_published_s=settings.outbox_keep_published_s,
            dead_letters_s=settings.dead_letter_keep_s,
            batch=settings.housekeeping_batch,
            webhook_events_s=settings.webhook_event_retention_s,
        )
        while True:
            await asyncio.sleep(settings.housekeeping_interval_s)
            try:
                await self.broker.wait_ready(timeout=settings.housekeeping_interval_s)
                await housekeep_once(
                    self.engine, self.broker.topology.dead_queue, retention, self.metrics
                )
            except Exception as exc:
                log.warning("housekeeping_failed", error=str(exc)[:300])

    async def _queue_stats_forever(self) -> None:
        while True:
            try:
                topology = self.broker.topology
                for queue in (topology.process_queue, topology.dead_queue):
                    declared = await queue.declare()
                    # aiormq types both counts optional; Queue.DeclareOk always carries them
                    self.metrics.queue_depth.labels(queue=queue.name).set(declared.message_count)  # type: ignore[arg-type]
                    self.metrics.queue_consumers.labels(queue=queue.name).set(
                        declared.consumer_count  # type: ignore[arg-type]
                    )
            except Exception as exc:
                log.debug("queue_stats_failed", error=str(exc)[:200])
            await asyncio.sleep(QUEUE_STATS_EVERY_S)

    async def _webhook_stats_forever(self) -> None:
        while True:
            try:
                await self.webhooks.refresh_stats()
            except Exception as exc:
                log.debug("webhook_stats_failed", error=str(exc)[:200])
            await asyncio.sleep(QUEUE_STATS_EVERY_S)


def bootstrap(settings: Settings) -> ProcessorService:
    """The processor composed on the shared resources (payout_core.bootstrap): it alone
    retries, so it alone declares the delay queues."""
    resources = build_resources(
        settings,
        retry_delays_ms=retry_delays_ms(
            settings.processor_retry_base_ms, settings.processor_max_attempts
        ),
    )
    engine, broker = resources.engine, resources.broker
    metrics = ProcessorMetrics()
    # One connection per payout in flight: a call never waits for the pool (that wait would
    # count against its timeout and make a call that never left look in doubt).
    provider = ProviderClient(
        settings.provider_url,
        settings.provider_timeout_s,
        max_connections=settings.processor_concurrency,
    )
    consumer = PayoutConsumer(
        broker,
        PayoutProcessor(ProcessingStatements(engine), provider, metrics),
        metrics,
        concurrency=settings.processor_concurrency,
        prefetch=settings.processor_prefetch,
        max_attempts=settings.processor_max_attempts,
        retry_base_ms=settings.processor_retry_base_ms,
    )
    webhooks = WebhookDeliverer(
        engine, broker, metrics, settings, SecretBox.at_start(settings.webhook_secret_key)
    )
    return ProcessorService(settings, engine, broker, metrics, consumer, provider, webhooks)

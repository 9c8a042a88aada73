"""The API's application factory: all wiring in one place, nothing opened at import time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from payout_api.adapters.outbox_relay import OutboxRelay
from payout_api.adapters.payout_repository import SqlPayoutStore
from payout_api.adapters.webhook_repository import SqlWebhookStore
from payout_api.key_cache import KeyCache
from payout_api.keys import (
    BROKER,
    ENGINE,
    KEY_CACHE,
    METRICS,
    PAYOUTS,
    RATE_LIMITER,
    RELAY,
    RESOURCES,
    SETTINGS,
    WEBHOOKS,
)
from payout_api.middlewares import setup_middlewares
from payout_api.rate_limit import RateLimiter
from payout_api.routes import setup_routes
from payout_api.service.payouts import PayoutUseCases, system_clock
from payout_api.webhooks.service import WebhookUseCases
from payout_core import audit, unfinished_gauge
from payout_core.bootstrap import build_resources
from payout_core.clients import BOOTSTRAP_CLIENT, ensure_client
from payout_core.logging import get_logger
from payout_core.metrics import ApiMetrics
from payout_core.settings import Settings
from payout_core.webhooks.secrets import SecretBox

log = get_logger(__name__)
MAX_BODY_BYTES = 64 * 1024


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.api_bootstrap_key:
        await _ensure_bootstrap_client(app, settings.api_bootstrap_key)
    app[RESOURCES].start()
    yield
    await app[RESOURCES].close()


async def _ensure_bootstrap_client(app: web.Application, key: str) -> None:
    delay = 0.2
    while True:
        try:
            async with app[ENGINE].begin() as conn:
                changes = await ensure_client(conn, BOOTSTRAP_CLIENT, key)
                if changes:  # audited only when it changed something, not at every start
                    await audit.record(
                        conn, audit.BOOTSTRAP_ACTOR, "bootstrap-key", BOOTSTRAP_CLIENT, changes
                    )
            # Masked to its last 4 characters: enough to tell which key is configured.
            log.info("bootstrap_client_ready", client=BOOTSTRAP_CLIENT, api_key=key)
            return
        except (OSError, TimeoutError) as exc:  # database not up yet: keep trying
            log.warning("bootstrap_client_waiting_for_database", error=str(exc)[:200])
        except IntegrityError:
            # Another API process (a replica, a worker) inserted it at the same moment, on a
            # fresh database: the next attempt finds it and updates it.
            log.info("bootstrap_client_raced")
        except Exception as exc:
            if "connect" not in str(exc).lower():
                raise
            log.warning("bootstrap_client_waiting_for_database", error=str(exc)[:200])
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


async def _relay(app: web.Application) -> AsyncIterator[None]:
    relay = app[RELAY]
    relay.start()
    yield
    await relay.stop(drain_timeout=min(5.0, app[SETTINGS].shutdown_grace_s))


async def _unfinished_gauge(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    task = asyncio.create_task(
        unfinished_gauge.refresh_forever(
            app[ENGINE],
            app[METRICS],
            settings.reconcile_stuck_after_s,
            every_s=settings.reconcile_interval_s,
        ),
        name="unfinished-gauge",
    )
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def create_app(
    settings: Settings, clock: Callable[[], datetime] = system_clock
) -> web.Application:
    """The API composed on the shared resources (payout_core.bootstrap); nothing connects
    before the app starts (cleanup_ctx)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    metrics = app[METRICS] = ApiMetrics()
    resources = app[RESOURCES] = build_resources(settings, max_waiting=settings.api_db_max_waiting)
    app[ENGINE], app[BROKER] = resources.engine, resources.broker
    relay = app[RELAY] = OutboxRelay(
        resources.engine,
        resources.broker,
        metrics,
        poll_interval_s=settings.outbox_poll_interval_ms / 1000,
    )
    app[PAYOUTS] = PayoutUseCases(SqlPayoutStore(resources.engine), metrics, relay.notify, clock)
    app[WEBHOOKS] = WebhookUseCases(
        SqlWebhookStore(resources.engine),
        settings,
        SecretBox.at_start(settings.webhook_secret_key),
        relay.notify,
    )
    app[KEY_CACHE] = KeyCache(settings.api_key_cache_ttl_s)
    app[RATE_LIMITER] = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    setup_middlewares(app)
    setup_routes(app)
    # Opened in order, closed in reverse: the relay stops before the broker and the database.
    app.cleanup_ctx.extend([_resources, _relay, _unfinished_gauge])
    return app

"""The API's application factory: all wiring in one place, nothing opened at import time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from payout_api.adapters.outbox_relay import OutboxRelay
from payout_api.key_cache import KeyCache
from payout_api.keys import (
    BROKER,
    CLOCK,
    ENGINE,
    KEY_CACHE,
    METRICS,
    RATE_LIMITER,
    RELAY,
    SETTINGS,
    WEBHOOK_SECRETS,
)
from payout_api.middlewares import setup_middlewares
from payout_api.rate_limit import RateLimiter
from payout_api.routes import setup_routes
from payout_api.service.payouts import system_clock
from payout_core import audit
from payout_core.clients import BOOTSTRAP_CLIENT, ensure_client
from payout_core.db.engine import create_engine
from payout_core.logging import get_logger
from payout_core.messaging.broker import Broker
from payout_core.metrics import ApiMetrics
from payout_core.settings import Settings
from payout_core.webhooks.secrets import SecretBox

log = get_logger(__name__)
MAX_BODY_BYTES = 64 * 1024


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_waiting=settings.api_db_max_waiting,
    )
    app[ENGINE] = engine
    if settings.api_bootstrap_key:
        await _ensure_bootstrap_client(app, settings.api_bootstrap_key)
    yield
    await engine.dispose()


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


async def _broker(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    broker = Broker(
        settings.amqp_url,
        retry_base_ms=settings.processor_retry_base_ms,
        max_attempts=settings.processor_max_attempts,
    )
    app[BROKER] = broker
    broker.start()
    yield
    await broker.close()


async def _relay(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    relay = OutboxRelay(
        app[ENGINE],
        app[BROKER],
        app[METRICS],
        poll_interval_s=settings.outbox_poll_interval_ms / 1000,
    )
    app[RELAY] = relay
    relay.start()
    yield
    await relay.stop(drain_timeout=min(5.0, settings.shutdown_grace_s))


async def create_app(
    settings: Settings, clock: Callable[[], datetime] = system_clock
) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[METRICS] = ApiMetrics()
    app[KEY_CACHE] = KeyCache(settings.api_key_cache_ttl_s)
    app[RATE_LIMITER] = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    app[WEBHOOK_SECRETS] = SecretBox.at_start(settings.webhook_secret_key)
    setup_middlewares(app)
    setup_routes(app)
    # Opened in order, closed in reverse: the relay stops before the broker and the database.
    app.cleanup_ctx.extend([_database, _broker, _relay])
    return app

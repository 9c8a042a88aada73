"""Typed application keys: the one place that names what lives on the aiohttp app."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_api.adapters.outbox_relay import OutboxRelay
from payout_api.key_cache import KeyCache
from payout_api.rate_limit import RateLimiter
from payout_api.service.payouts import PayoutUseCases
from payout_api.webhooks.service import WebhookUseCases
from payout_core.bootstrap import SharedResources
from payout_core.messaging.broker import Broker
from payout_core.metrics import ApiMetrics
from payout_core.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
# The database and the broker (payout_core.bootstrap); ENGINE and BROKER name its two parts.
RESOURCES = web.AppKey("resources", SharedResources)
ENGINE = web.AppKey("engine", AsyncEngine)
BROKER = web.AppKey("broker", Broker)
METRICS = web.AppKey("metrics", ApiMetrics)
RELAY = web.AppKey("relay", OutboxRelay)
# The use cases, built once in create_app.
PAYOUTS = web.AppKey("payouts", PayoutUseCases)
WEBHOOKS = web.AppKey("webhooks", WebhookUseCases)
KEY_CACHE = web.AppKey("key_cache", KeyCache)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
# Per-request values live on the request: see payout_api.context.

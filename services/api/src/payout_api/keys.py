"""Typed application keys: the one place that names what lives on the aiohttp app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_api.adapters.outbox_relay import OutboxRelay
from payout_api.key_cache import KeyCache
from payout_api.rate_limit import RateLimiter
from payout_core.messaging.broker import Broker
from payout_core.metrics import ApiMetrics
from payout_core.settings import Settings
from payout_core.webhooks.secrets import SecretBox

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
BROKER = web.AppKey("broker", Broker)
METRICS = web.AppKey("metrics", ApiMetrics)
RELAY = web.AppKey("relay", OutboxRelay)
KEY_CACHE = web.AppKey("key_cache", KeyCache)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
WEBHOOK_SECRETS = web.AppKey("webhook_secrets", SecretBox)
# The API process's own clock: tests inject a skewed one; nothing compared is read from it.
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
# Per-request values live on the request: see payout_api.context.

"""Liveness, readiness and metrics endpoints shared by both services (no key needed)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.messaging.broker import Broker
from payout_core.metrics import ServiceMetrics


async def database_ok(engine: AsyncEngine, timeout: float = 2.0) -> bool:
    try:
        async with asyncio.timeout(timeout), engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        return False


async def readiness(engine: AsyncEngine, broker: Broker) -> web.Response:
    checks = {"database": await database_ok(engine), "broker": broker.is_ready}
    ok = all(checks.values())
    return web.json_response(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )


def metrics_response(metrics: ServiceMetrics) -> web.Response:
    body, content_type = metrics.render()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})

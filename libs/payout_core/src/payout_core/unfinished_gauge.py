"""`payout_unfinished`, counted in PostgreSQL: by each processor after its reconciler's pass
and by each API process on the same interval. The API runs whatever KEDA does with the
processors, so the alerts on it (the max over every replica) keep watching at zero
processors; every replica reports the same numbers."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db import attention
from payout_core.logging import get_logger
from payout_core.metrics import ServiceMetrics

log = get_logger(__name__)


async def refresh(engine: AsyncEngine, metrics: ServiceMetrics, stuck_after_s: float) -> None:
    async with engine.connect() as conn:
        counts = await attention.counts(conn, stuck_after_s)
    for state, count in counts.items():
        metrics.unfinished.labels(state=state).set(count)


async def refresh_forever(
    engine: AsyncEngine, metrics: ServiceMetrics, stuck_after_s: float, every_s: float
) -> None:
    while True:
        try:
            await refresh(engine, metrics, stuck_after_s)
        except Exception as exc:  # the database away: the next round tries again
            log.warning("unfinished_gauge_failed", error=str(exc)[:300])
        await asyncio.sleep(every_s)

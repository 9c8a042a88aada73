"""The processor while PostgreSQL stays away longer than its whole retry budget: once the
database is back the payout fails with processing_error and its message is dead-lettered once,
instead of spinning through redeliveries meanwhile."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.tables import payouts
from payout_core.settings import Settings
from payout_processor.service import ProcessorService, bootstrap
from tests.support.infra import Infra
from tests.support.load import payout_body
from tests.support.polling import eventually, eventually_holds
from tests.support.tcp_proxy import TcpProxy

OUTAGE_S = 3.0  # the retry budget is 50 + 100 + 200 + 400 ms


@pytest.fixture
def settings(fresh_infra: Infra) -> Settings:
    """Overrides the session's: this test counts messages, so it needs a vhost of its own."""
    return Settings.from_env(fresh_infra.env(API_HOST="127.0.0.1", PROCESSOR_HTTP_PORT="0"))


@pytest.fixture
async def processor_via_proxy(
    settings: Settings,
) -> AsyncIterator[tuple[ProcessorService, TcpProxy]]:
    proxy = TcpProxy.to_url(settings.database_url).start()
    service = bootstrap(
        dataclasses.replace(settings, database_url=proxy.proxied(settings.database_url))
    )
    await service.start()
    yield service, proxy
    await service.stop()
    proxy.close()


def counted(service: ProcessorService, outcome: str) -> float:
    value = service.metrics.registry.get_sample_value("payout_messages_total", {"outcome": outcome})
    return value or 0.0


async def test_an_outage_longer_than_the_retries_fails_the_payout_once_the_database_is_back(
    api, auth, engine: AsyncEngine, processor_via_proxy: tuple[ProcessorService, TcpProxy]
):
    service, database = processor_via_proxy
    database.cut()
    resp = await api.post("/api/payouts/", json=payout_body(), headers=auth)
    assert resp.status == 201
    payout_id = uuid.UUID((await resp.json())["id"])
    max_attempts = service.settings.processor_max_attempts
    await eventually_holds(
        lambda: counted(service, "retried") >= max_attempts - 1, what="retries used up"
    )
    await asyncio.sleep(OUTAGE_S)  # the outage itself goes on
    database.restore()

    async def failed() -> str | None:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(payouts.c.status, payouts.c.failure_code).where(
                        payouts.c.id == payout_id
                    )
                )
            ).one()
        return row.failure_code if row.status == "failed" else None

    assert await eventually(failed, timeout=15, what="payout failed") == "processing_error"
    assert counted(service, "dead_lettered") == 1
    dead = await service.broker.topology.dead_queue.declare()
    assert dead.message_count == 1

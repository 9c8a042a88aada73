"""The processor while its PostgreSQL stays away for two minutes, far longer than its whole
retry budget (50 + 100 + 200 + 400 ms): the payout accepted meanwhile waits, its attempts
untouched, and ends processed once the database is back; nothing is dead-lettered. This is
the suite's one long test (OUTAGE_S); every other outage is shortened through settings."""

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
from payout_processor.wiring import ProcessorService, bootstrap
from tests.support.infra import Infra
from tests.support.load import payout_body
from tests.support.payout_checks import assert_all_terminal_and_sound
from tests.support.polling import eventually, eventually_holds
from tests.support.tcp_proxy import TcpProxy

OUTAGE_S = 120.0


@pytest.fixture
def settings(fresh_infra: Infra, provider_sim: str) -> Settings:
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


async def test_a_two_minute_database_outage_delays_the_payout_and_fails_nothing(
    api,
    auth,
    engine: AsyncEngine,
    settings: Settings,
    processor_via_proxy: tuple[ProcessorService, TcpProxy],
):
    service, database = processor_via_proxy
    database.cut()
    resp = await api.post("/api/payouts/", json=payout_body(), headers=auth)
    assert resp.status == 201  # the API's own connection is not cut
    payout_id = uuid.UUID((await resp.json())["id"])
    max_attempts = service.settings.processor_max_attempts
    await eventually_holds(
        lambda: deferred(service) > max_attempts, timeout=30, what="deferred past the attempts"
    )
    await asyncio.sleep(OUTAGE_S)  # the outage itself goes on
    database.restore()

    async def processed() -> bool:
        async with engine.connect() as conn:
            status = await conn.scalar(sa.select(payouts.c.status).where(payouts.c.id == payout_id))
        return status == "processed"

    await eventually(processed, timeout=30, what="payout processed after the outage")
    assert counted(service, "retried") == 0  # no attempt was used by the outage
    assert counted(service, "dead_lettered") == 0
    dead = await service.broker.topology.dead_queue.declare()
    assert dead.message_count == 0
    await assert_all_terminal_and_sound(settings.database_url, {"processed": 1})
    print(f"\ndeferred {deferred(service):.0f} times over the {OUTAGE_S:.0f} s outage")


def deferred(service: ProcessorService) -> float:
    value = service.metrics.registry.get_sample_value(
        "payout_deferrals_total", {"reason": "database_unavailable"}
    )
    return value or 0.0

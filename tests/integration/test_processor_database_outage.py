"""The processor while its PostgreSQL stays away far longer than its whole retry budget
(50 + 100 + 200 + 400 ms): the payout accepted meanwhile waits, its attempts untouched, and
ends processed once the database is back; nothing is dead-lettered. The issue's two minutes
run in the soak tier (`make test-soak`); `make test` runs the same test with a 5 s outage,
already six times the budget: the window where attempts could be used up is the same."""

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

# (the outage, its tier): the 2 minutes in the soak tier, a short one in make test.
OUTAGES_S = [pytest.param(5.0, id="5s"), pytest.param(120.0, id="120s", marks=pytest.mark.soak)]


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


@pytest.mark.parametrize("outage_s", OUTAGES_S)
async def test_a_database_outage_delays_the_payout_and_fails_nothing(
    outage_s: float,
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
    await asyncio.sleep(outage_s)  # the outage itself goes on
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
    print(f"\ndeferred {deferred(service):.0f} times over the {outage_s:.0f} s outage")


def deferred(service: ProcessorService) -> float:
    value = service.metrics.registry.get_sample_value(
        "payout_deferrals_total", {"reason": "database_unavailable"}
    )
    return value or 0.0

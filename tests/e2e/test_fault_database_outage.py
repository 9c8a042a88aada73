"""PostgreSQL unreachable for a few seconds under load (both services' connections cut through
a proxy): the API answers 503 problems meanwhile, never 500, then serves normally again without
a restart; every payout it accepted is processed, none lost."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.e2e.conftest import Stack
from tests.support.infra import Infra
from tests.support.load import LoadResult, create_payouts
from tests.support.payout_checks import assert_all_terminal_and_sound, fetch
from tests.support.polling import eventually_holds
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e
OUTAGE_S = 3.0


@pytest.fixture
def stack_env(stack_env: dict[str, str], fresh_infra: Infra, database_proxy: TcpProxy):
    return {
        **stack_env,
        "DATABASE_URL": database_proxy.proxied(fresh_infra.database_url),
        # Retries 1 s, 2 s, 4 s, 8 s apart: a few seconds' outage stays within the budget.
        "PROCESSOR_RETRY_BASE_MS": "1000",
    }


async def readiness(session: aiohttp.ClientSession, stack: Stack) -> tuple[int, int]:
    statuses = []
    for service in (stack.api, stack.processor):
        async with session.get(service.url + "/readyz") as resp:
            statuses.append(resp.status)
    return statuses[0], statuses[1]


async def test_database_outage_under_load_gives_503s_then_normal_service_and_loses_nothing(
    stack: Stack, database_proxy: TcpProxy
):
    answers = LoadResult()
    stop = asyncio.Event()
    load = asyncio.create_task(
        create_payouts([stack.api.url], stack.auth, stop=stop, concurrency=16, result=answers)
    )
    async with aiohttp.ClientSession() as session:
        await eventually_holds(lambda: len(answers.created) >= 100, timeout=30, what="load")

        database_proxy.cut()
        await eventually_holds(lambda: answers.statuses[503] >= 20, what="503 answers")
        assert await readiness(session, stack) == (503, 503)
        await asyncio.sleep(OUTAGE_S)  # the outage itself, not a wait for a condition
        database_proxy.restore()

        created_before = len(answers.created)
        await eventually_holds(
            lambda: len(answers.created) >= created_before + 100,
            timeout=30,
            what="201s again after the outage",
        )
        assert await readiness(session, stack) == (200, 200)
    stop.set()
    await load

    assert set(answers.statuses) == {201, 503}, answers.statuses
    assert answers.not_problems == []
    db = stack.infra.database_url
    # What the client knows bounds what is stored: every 201, and at most the 503s (a COMMIT
    # whose reply was lost in the outage).
    stored = {row[0] for row in await fetch(db, "SELECT id::text FROM payouts")}
    assert set(answers.created) <= stored
    assert len(stored) <= len(answers.created) + answers.statuses[503]
    await assert_all_terminal_and_sound(db, {"processed": len(stored)})
    print(f"\nanswers {dict(answers.statuses)}; payouts stored {len(stored)}")

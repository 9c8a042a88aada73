"""`payout_unfinished` comes from the API too, with no processor running (KEDA at zero): the
alerts on in-doubt, flagged and stuck payouts keep watching."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db import attention
from payout_core.db.transitions import transition
from payout_core.domain.status import PayoutStatus
from payout_core.settings import Settings
from tests.support.infra import Infra
from tests.support.load import payout_body
from tests.support.polling import eventually
from tests.support.scrape import Scrape


@pytest.fixture
def settings(fresh_infra: Infra) -> Settings:
    """A database of this test's own (its payouts are counted), counted every 0.2 s."""
    return Settings.from_env(fresh_infra.env(RECONCILE_INTERVAL_S="0.2"))


async def unfinished(api) -> dict[str, float]:
    resp = await api.get("/metrics")
    assert resp.status == 200
    scraped = Scrape.parse(await resp.text())
    return {
        state: scraped.value("payout_unfinished", state=state)
        for state in ("stuck", "in_doubt", "flagged")
    }


async def test_the_api_counts_payouts_in_doubt_and_flagged(api, auth, engine: AsyncEngine):
    assert await unfinished(api) == {"stuck": 0, "in_doubt": 0, "flagged": 0}
    ids = []
    for _ in range(3):
        resp = await api.post("/api/payouts/", json=payout_body(), headers=auth)
        assert resp.status == 201
        ids.append(uuid.UUID((await resp.json())["id"]))
    async with engine.begin() as conn:
        for payout_id in ids[:2]:
            await transition(
                conn, payout_id, PayoutStatus.PENDING, PayoutStatus.PROCESSING, reason="test"
            )
        await attention.mark_in_doubt(conn, ids[0])
        await attention.flag(conn, [ids[1], ids[2]], attention.REENQUEUES_USED_UP)

    async def counted() -> bool:
        return await unfinished(api) == {"stuck": 0, "in_doubt": 1, "flagged": 2}

    await eventually(counted, what="the API's gauge: one in doubt, two flagged")

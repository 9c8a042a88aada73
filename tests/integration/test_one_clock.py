"""One clock: an API process whose own clock is a day behind (injected; tests only) stores
every compared timestamp from PostgreSQL, so its payouts look neither stuck to the reconciler
nor expired to the idempotency window."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_api.app import create_app
from payout_api.keys import BROKER
from payout_core.provider_client import ProviderClient
from payout_core.reconcile import reconcile_once
from payout_core.settings import Settings
from tests.support.infra import Infra
from tests.support.load import payout_body
from tests.support.processes import free_port

SKEW = timedelta(hours=-25)  # past the 24 h idempotency window and any stuck threshold


def skewed_clock() -> datetime:
    return datetime.now(UTC) + SKEW


@pytest.fixture
def settings(fresh_infra: Infra) -> Settings:
    """Overrides the session's: the reconciler here must see this test's payouts only."""
    return Settings.from_env(fresh_infra.env())


@pytest.fixture
async def skewed_api(aiohttp_client, settings: Settings) -> TestClient:
    client = await aiohttp_client(await create_app(settings, clock=skewed_clock))
    await client.app[BROKER].wait_ready(timeout=15)
    return client


async def test_a_skewed_api_clock_changes_no_compared_timestamp_and_re_enqueues_nothing(
    skewed_api: TestClient, new_client_key, engine: AsyncEngine, settings: Settings
):
    auth = {"Authorization": f"Bearer {await new_client_key()}"}
    headers = {**auth, "Idempotency-Key": f"clock-{uuid.uuid4()}"}
    first = await skewed_api.post("/api/payouts/", json=payout_body(), headers=headers)
    again = await skewed_api.post("/api/payouts/", json=payout_body(), headers=headers)
    assert first.status == 201
    assert again.headers.get("Idempotent-Replayed") == "true"  # the key is not "25 h old"
    created = await first.json()
    assert (await again.json()) == created
    payout_id = uuid.UUID(created["id"])

    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(
                    "SELECT now() - p.created_at AS created_ago, now() - p.updated_at AS "
                    "updated_ago, now() - k.created_at AS key_ago, o.payload->>'created_at' "
                    "AS message_at FROM payouts p JOIN idempotency_keys k ON k.payout_id = p.id "
                    "JOIN outbox o ON o.payload->>'payout_id' = p.id::text WHERE p.id = :id"
                ),
                {"id": payout_id},
            )
        ).one()
    for ago in (row.created_ago, row.updated_ago, row.key_ago):
        assert timedelta(0) <= ago < timedelta(minutes=1), row
    # The skew was in effect: the one thing dated by the process clock (informational).
    assert datetime.fromisoformat(row.message_at) < datetime.now(UTC) + SKEW / 2

    provider = ProviderClient(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    broker = skewed_api.app[BROKER]
    found = await reconcile_once(engine, broker, provider, 300, max_reenqueues=5)
    assert found.claimed == 0, "a payout from a skewed clock looked stuck"

    # The same check does catch a payout that really has not moved for an hour.
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE payouts SET updated_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": payout_id},
        )
    found = await reconcile_once(engine, broker, provider, 300, max_reenqueues=5)
    assert found.reenqueued == 1
    await provider.close()

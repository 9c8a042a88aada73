from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from payout_api.app import create_app
from payout_api.keys import BROKER
from payout_core.messaging.broker import Broker
from payout_core.messaging.contracts import retry_delays_ms
from payout_core.settings import Settings


@pytest.fixture
async def api(aiohttp_client, settings: Settings) -> TestClient:
    """The real API app (real PostgreSQL and RabbitMQ) behind aiohttp's test client."""
    client = await aiohttp_client(await create_app(settings))
    await client.app[BROKER].wait_ready(timeout=15)
    return client


@pytest.fixture
async def key(new_client_key) -> str:
    return await new_client_key()


@pytest.fixture
def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[Broker]:
    """A broker connection of the test's own (on the settings' vhost)."""
    delays = retry_delays_ms(settings.processor_retry_base_ms, settings.processor_max_attempts)
    broker = Broker(settings.amqp_url, retry_delays_ms=delays)
    broker.start()
    await broker.wait_ready(timeout=15)
    yield broker
    await broker.close()

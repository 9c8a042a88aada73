"""Every queue the running services declare is a quorum queue: a RabbitMQ cluster replicates
it on a majority of nodes. A classic queue lives on one node, and while that node is down even
declaring it fails, so a processor that declares one at connect could not reconnect to the
nodes still up (found by make test-ha scenario 1 with the webhook delay queues)."""

from __future__ import annotations

import asyncio

import pytest

from payout_core.settings import Settings
from payout_core.webhooks.queues import WEBHOOK_QUEUE, delay_queue_name
from tests.e2e.conftest import Stack
from tests.support.infra import queue_info
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


async def test_every_declared_queue_is_a_quorum_queue(stack: Stack):
    schedule = Settings.from_env(stack.env).webhook_retry_schedule_s
    webhook_delays = {delay_queue_name(delay_s) for delay_s in schedule}

    async def declared() -> dict[str, str] | None:
        # The processor declares the webhook delay queues once its consumer has started.
        types = await asyncio.to_thread(queue_info, stack.infra.vhost, "type")
        return types if webhook_delays <= types.keys() else None

    types = await eventually(declared, timeout=30, interval=0.5, what="the webhook delay queues")
    assert WEBHOOK_QUEUE in types
    assert {name: kind for name, kind in types.items() if kind != "quorum"} == {}

"""The processor against bad deliveries, on a database and vhost of this test's own: duplicated
messages, poison messages, and the quorum queue's delivery limit as the last guard."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import aio_pika
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.tables import payout_events, payouts
from payout_core.messaging.broker import Broker, OutgoingMessage
from payout_core.messaging.contracts import DELIVERY_LIMIT, ROUTING_KEY_CREATED, PayoutCreated
from payout_core.settings import Settings
from payout_processor.wiring import ProcessorService, bootstrap
from tests.support.infra import Infra
from tests.support.load import payout_body
from tests.support.polling import eventually, eventually_holds
from tests.support.provider import executions

StartProcessor = Callable[[], Awaitable[ProcessorService]]


@pytest.fixture
def settings(fresh_infra: Infra, provider_sim: str) -> Settings:
    """Overrides the session's: these tests count messages, so they need a vhost of their own."""
    return Settings.from_env(fresh_infra.env(API_HOST="127.0.0.1", PROCESSOR_HTTP_PORT="0"))


@pytest.fixture
async def start_processor(settings: Settings) -> AsyncIterator[StartProcessor]:
    """Starts the real processor in this process, on demand; stopped afterwards."""
    started: list[ProcessorService] = []

    async def start() -> ProcessorService:
        service = bootstrap(settings)
        await service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        await service.stop()


def counted(service: ProcessorService, outcome: str) -> float:
    value = service.metrics.registry.get_sample_value("payout_messages_total", {"outcome": outcome})
    return value or 0.0


async def queue_depth(broker: Broker, queue: aio_pika.abc.AbstractQueue) -> int:
    declared = await queue.declare()
    return int(declared.message_count or 0)


async def create_payout(api, auth) -> dict:
    resp = await api.post("/api/payouts/", json=payout_body(), headers=auth)
    assert resp.status == 201
    return await resp.json()


def message_for(payout_id: str) -> OutgoingMessage:
    created = PayoutCreated(payout_id=uuid.UUID(payout_id), created_at=datetime.now(UTC))
    return OutgoingMessage(ROUTING_KEY_CREATED, created.to_body(), message_id=payout_id)


async def history(engine: AsyncEngine, payout_id: str) -> list[tuple[str | None, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(payout_events.c.from_status, payout_events.c.to_status)
            .where(payout_events.c.payout_id == uuid.UUID(payout_id))
            .order_by(payout_events.c.id)
        )
        return [tuple(row) for row in rows]


async def test_the_same_message_published_three_times_is_processed_once(
    api,
    auth,
    broker: Broker,
    engine: AsyncEngine,
    settings: Settings,
    start_processor: StartProcessor,
):
    payout = await create_payout(api, auth)  # the API's relay publishes it once
    await broker.publish_batch([message_for(payout["id"])] * 2)  # and twice more
    process_queue = broker.topology.process_queue
    await eventually(lambda: _at_least(queue_depth(broker, process_queue), 3), what="3 copies")

    service = await start_processor()
    await eventually_holds(
        lambda: counted(service, "processed") + counted(service, "skipped_duplicate") == 3,
        what="the three copies handled",
    )
    assert counted(service, "processed") == 1
    assert counted(service, "skipped_duplicate") == 2
    assert await history(engine, payout["id"]) == [
        (None, "pending"),
        ("pending", "processing"),
        ("processing", "processed"),
    ]
    assert (await executions(settings.provider_sim_database_url))[payout["id"]] == 1
    assert await queue_depth(broker, process_queue) == 0


async def test_poison_messages_are_dead_lettered_and_the_consumer_keeps_going(
    api, auth, broker: Broker, engine: AsyncEngine, start_processor: StartProcessor
):
    # A payout the processor fails on at every attempt (its recipient lost the account).
    choking = await create_payout(api, auth)
    async with engine.begin() as conn:
        await conn.execute(
            payouts.update()
            .where(payouts.c.id == uuid.UUID(choking["id"]))
            .values(recipient_details={"name": "no account"})
        )
    await broker.publish_batch(
        [
            OutgoingMessage(ROUTING_KEY_CREATED, b"not json", message_id="poison-1"),
            OutgoingMessage(ROUTING_KEY_CREATED, b'{"version": 99}', message_id="poison-2"),
            message_for(str(uuid.uuid4())),  # a payout that does not exist
        ]
    )
    service = await start_processor()
    healthy = await create_payout(api, auth)

    dead_queue = broker.topology.dead_queue
    await eventually(lambda: _at_least(queue_depth(broker, dead_queue), 4), what="4 dead letters")
    await eventually(
        lambda: _last_status(engine, healthy["id"], "processed"), what="a healthy payout processed"
    )
    assert await history(engine, choking["id"]) == [
        (None, "pending"),
        ("pending", "processing"),
        ("processing", "failed"),
    ]
    async with engine.connect() as conn:
        code = await conn.scalar(
            sa.select(payouts.c.failure_code).where(payouts.c.id == uuid.UUID(choking["id"]))
        )
    assert code == "processing_error"
    assert counted(service, "malformed") == 3
    assert counted(service, "retried") == service.settings.processor_max_attempts - 1
    assert counted(service, "dead_lettered") == 1
    assert await queue_depth(broker, dead_queue) == 4


async def test_a_message_requeued_past_the_delivery_limit_is_dead_lettered(broker: Broker):
    await broker.publish_batch([message_for(str(uuid.uuid4()))])
    deliveries = 0

    async def requeue_forever(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal deliveries
        deliveries += 1
        await message.nack(requeue=True)

    channel = await broker.connection.channel()
    queue = await channel.get_queue(broker.topology.process_queue.name)
    await queue.consume(requeue_forever)
    dead_queue = broker.topology.dead_queue
    await eventually(lambda: _at_least(queue_depth(broker, dead_queue), 1), what="dead-lettered")
    await channel.close()

    assert deliveries == DELIVERY_LIMIT + 1
    dead = await dead_queue.get(no_ack=True)
    assert dead.headers["x-first-death-reason"] == "delivery_limit"


async def _at_least(depth: Awaitable[int], minimum: int) -> bool:
    return await depth >= minimum


async def _last_status(engine: AsyncEngine, payout_id: str, status: str) -> bool:
    steps = await history(engine, payout_id)
    return bool(steps) and steps[-1][1] == status

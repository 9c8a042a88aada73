"""The broker side of a cluster on the machine's RabbitMQ (a vhost of the test's own): an
AMQP_URL listing several nodes moves to the next when one is lost, and a vhost holding the
previous topology (classic delay queues, quorum queues without the new arguments) upgrades
without losing a message."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aio_pika
import pytest

from payout_core.messaging.broker import Broker, OutgoingMessage
from payout_core.messaging.contracts import (
    DEAD_LETTER_EXCHANGE,
    EXCHANGE,
    QUEUE_DEAD,
    QUEUE_PROCESS,
    ROUTING_KEY_CREATED,
    retry_delays_ms,
)
from payout_core.messaging.topology import DEAD_ARGUMENTS_V1, PROCESS_ARGUMENTS_V1, UPGRADE_POLICIES
from tests.support.infra import Infra, queue_info, rabbitmqctl
from tests.support.polling import eventually
from tests.support.tcp_proxy import TcpProxy

LEGACY_DELAY_QUEUE = "payouts.retry.2000ms"  # retry_base_ms=2000, max_attempts=2


@pytest.fixture
async def two_nodes(fresh_infra: Infra) -> AsyncIterator[tuple[TcpProxy, TcpProxy]]:
    """Two addresses of one RabbitMQ, each behind a proxy that can lose it."""
    proxies = tuple(TcpProxy.to_url(fresh_infra.amqp_url).start() for _ in range(2))
    yield proxies
    for proxy in proxies:
        proxy.close()


async def test_a_lost_node_is_replaced_by_the_next_one_in_the_list(
    fresh_infra: Infra, two_nodes: tuple[TcpProxy, TcpProxy]
):
    first, second = two_nodes
    urls = ",".join(proxy.proxied(fresh_infra.amqp_url) for proxy in two_nodes)
    broker = Broker(urls)
    broker.start()
    try:
        await broker.wait_ready(15)
        assert broker.connection.node == f"127.0.0.1:{first.port}"

        first.cut()  # node 1 is gone (and stays gone)

        async def moved() -> bool:
            return broker.is_ready and broker.connection.node == f"127.0.0.1:{second.port}"

        await eventually(moved, timeout=20, interval=0.1, what="the connection on node 2")
        message = OutgoingMessage(ROUTING_KEY_CREATED, b"{}", "after-failover")
        await eventually(
            lambda: _published(broker, message), timeout=20, interval=0.2, what="a publish"
        )
    finally:
        await broker.close()


async def _published(broker: Broker, message: OutgoingMessage) -> bool:
    try:
        await broker.publish_batch([message], timeout=5)
    except Exception:
        return False
    return True


async def _declare_previous_topology(amqp_url: str) -> None:
    """The topology as deployments before issue 12 have it, with a message in the work queue
    and one waiting in a classic delay queue."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(EXCHANGE, "topic", durable=True)
        dlx = await channel.declare_exchange(DEAD_LETTER_EXCHANGE, "direct", durable=True)
        dead = await channel.declare_queue(QUEUE_DEAD, durable=True, arguments=DEAD_ARGUMENTS_V1)
        await dead.bind(dlx, routing_key=QUEUE_DEAD)
        process = await channel.declare_queue(
            QUEUE_PROCESS, durable=True, arguments=PROCESS_ARGUMENTS_V1
        )
        await process.bind(exchange, routing_key=ROUTING_KEY_CREATED)
        await channel.declare_queue(
            LEGACY_DELAY_QUEUE,
            durable=True,
            arguments={
                "x-message-ttl": 2000,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": QUEUE_PROCESS,
            },
        )
        for queue, body in ((QUEUE_PROCESS, b"waiting"), (LEGACY_DELAY_QUEUE, b"delayed")):
            await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue)


async def test_the_previous_topology_upgrades_without_losing_a_message(fresh_infra: Infra):
    await _declare_previous_topology(fresh_infra.amqp_url)

    broker = Broker(fresh_infra.amqp_url, retry_delays_ms=retry_delays_ms(2000, 2))
    broker.start()
    try:
        await broker.wait_ready(15)
        # Used as they are (RabbitMQ refuses other arguments for an existing queue).
        assert set(broker.topology.outdated) == {QUEUE_DEAD, QUEUE_PROCESS}

        async def both_in_the_work_queue() -> bool:
            declared = await broker.topology.process_queue.declare()
            return declared.message_count == 2

        # The classic delay queue still hands its message on when the delay runs out.
        await eventually(both_in_the_work_queue, timeout=15, interval=0.2, what="2 messages")
    finally:
        await broker.close()

    again = Broker(fresh_infra.amqp_url, retry_delays_ms=retry_delays_ms(2000, 2))
    again.start()
    try:
        await again.wait_ready(15)  # the empty legacy queue is deleted on this start
    finally:
        await again.close()
    assert LEGACY_DELAY_QUEUE not in queue_info(fresh_infra.vhost, "policy")

    for name, (pattern, definition) in UPGRADE_POLICIES.items():
        rabbitmqctl(
            "set_policy", "-p", fresh_infra.vhost, "--apply-to", "queues",
            name, pattern, json.dumps(definition),
        )  # fmt: skip
    policies = queue_info(fresh_infra.vhost, "policy")
    assert policies[QUEUE_PROCESS] == "payouts-process-upgrade"
    assert policies[QUEUE_DEAD] == "payouts-dead-upgrade"

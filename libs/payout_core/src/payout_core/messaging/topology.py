"""Exchanges and queues, declared idempotently by every process at start: the same for all,
but the retry delay queues, which only a process that retries (the processor) declares.

Built for a RabbitMQ cluster: every queue a payout passes through is a quorum queue
(replicated on a majority of nodes), the retry delay queues included, and dead-lettering out of
them is at-least-once (RabbitMQ 3.10+): a message moves to its dead-letter target only once the
target has it, so a node lost in between loses nothing.

Upgrades. A queue's arguments are fixed when it is created; deployments from before this
topology have payouts.process and payouts.dead without the at-least-once and length arguments.
Those queues are used as they are (a warning names the policy that adds the arguments, see
docs/reliability.md), and their classic retry queues ("payouts.retry.<ms>ms") keep sending
their messages to payouts.process when the delays run out: each is deleted once empty.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractQueue

from payout_core.logging import get_logger
from payout_core.messaging.contracts import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_MAX_LENGTH,
    DELIVERY_LIMIT,
    EXCHANGE,
    LEGACY_RETRY_QUEUE_PREFIX,
    QUEUE_DEAD,
    QUEUE_PROCESS,
    ROUTING_KEY_CREATED,
    retry_queue_name,
)
from payout_core.messaging.queue_arguments import AT_LEAST_ONCE, QUORUM, delay_queue_arguments
from payout_core.webhooks.queues import declare_webhook_queue

log = get_logger(__name__)
PROCESS_ARGUMENTS_V1 = {
    **QUORUM,
    # RabbitMQ 3.10 has no default limit: a message redelivered this often is poison.
    "x-delivery-limit": DELIVERY_LIMIT,
    "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
    "x-dead-letter-routing-key": QUEUE_DEAD,
}
PROCESS_ARGUMENTS = {**PROCESS_ARGUMENTS_V1, **AT_LEAST_ONCE}
DEAD_ARGUMENTS_V1 = QUORUM
DEAD_ARGUMENTS = {**QUORUM, "x-max-length": DEAD_LETTER_MAX_LENGTH, "x-overflow": "reject-publish"}
# What an operator applies (rabbitmqctl set_policy) to give queues declared before this
# topology the arguments they lack: name -> (queue name pattern, definition).
UPGRADE_POLICIES = {
    "payouts-process-upgrade": (
        r"^payouts\.process$",
        {"dead-letter-strategy": "at-least-once", "overflow": "reject-publish"},
    ),
    "payouts-dead-upgrade": (
        r"^payouts\.dead$",
        {"max-length": DEAD_LETTER_MAX_LENGTH, "overflow": "reject-publish"},
    ),
}


@dataclass
class Topology:
    exchange: AbstractExchange
    process_queue: AbstractQueue
    dead_queue: AbstractQueue
    # The queues declared with the arguments of an older topology (see the module doc).
    outdated: tuple[str, ...] = ()


async def declare_topology(
    channel: AbstractChannel,
    retry_delays_ms: Sequence[int] = (),
    connection: AbstractConnection | None = None,
) -> Topology:
    """Declare everything on `channel`, with a delay queue for each of `retry_delays_ms`. With
    `connection`, queues that exist with older arguments are upgraded in place as far as
    RabbitMQ allows (see the module doc)."""
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    outdated: list[str] = []
    dead_arguments = await _arguments_in_place(
        connection, QUEUE_DEAD, DEAD_ARGUMENTS, DEAD_ARGUMENTS_V1, outdated
    )
    dead = await channel.declare_queue(QUEUE_DEAD, durable=True, arguments=dead_arguments)
    await dead.bind(dlx, routing_key=QUEUE_DEAD)
    process_arguments = await _arguments_in_place(
        connection, QUEUE_PROCESS, PROCESS_ARGUMENTS, PROCESS_ARGUMENTS_V1, outdated
    )
    process = await channel.declare_queue(QUEUE_PROCESS, durable=True, arguments=process_arguments)
    await process.bind(exchange, routing_key=ROUTING_KEY_CREATED)
    for delay_ms in retry_delays_ms:
        await channel.declare_queue(
            retry_queue_name(delay_ms),
            durable=True,
            arguments=delay_queue_arguments(delay_ms, QUEUE_PROCESS),
        )
    if connection is not None:
        for delay_ms in retry_delays_ms:
            legacy = retry_queue_name(delay_ms, LEGACY_RETRY_QUEUE_PREFIX)
            await _delete_if_empty(connection, legacy)
    await declare_webhook_queue(channel, exchange)
    return Topology(exchange, process, dead, tuple(outdated))


async def _arguments_in_place(
    connection: AbstractConnection | None,
    name: str,
    wanted: dict[str, Any],
    older: dict[str, Any],
    outdated: list[str],
) -> dict[str, Any]:
    """`wanted`, unless the queue exists with the `older` arguments (RabbitMQ refuses to
    redeclare a queue with other arguments): then those, and a warning."""
    if connection is None:
        return wanted
    try:
        async with _scratch_channel(connection) as probe:
            await probe.declare_queue(name, durable=True, arguments=wanted)
        return wanted
    except aio_pika.exceptions.ChannelPreconditionFailed:
        missing = sorted(set(wanted) - set(older))
        log.warning(
            "queue_arguments_outdated",
            queue=name,
            missing=missing,
            fix="apply the policy in docs/reliability.md (Upgrading the queues)",
        )
        outdated.append(name)
        return older


async def _delete_if_empty(connection: AbstractConnection, name: str) -> None:
    """Delete a queue of an older topology once it is empty (absent: nothing to do)."""
    try:
        async with _scratch_channel(connection) as scratch:
            await scratch.queue_delete(name, if_empty=True)
    except aio_pika.exceptions.ChannelPreconditionFailed:
        log.info("legacy_queue_not_empty_yet", queue=name)


@contextlib.asynccontextmanager
async def _scratch_channel(connection: AbstractConnection):  # type: ignore[no-untyped-def]
    """A channel for an operation RabbitMQ may answer by closing the channel."""
    channel = await connection.channel(publisher_confirms=False)
    try:
        yield channel
    finally:
        with contextlib.suppress(Exception):
            await channel.close()

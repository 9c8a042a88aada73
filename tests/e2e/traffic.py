"""Traffic for the observability tests: payouts through a running stack that end in every
outcome the processor counts, and HTTP requests on every route shape, 2xx and 4xx.

Outcomes and how they are reached:
  processed, failed  - payouts created through the API (the provider's test accounts);
  retried            - the timeout account: two timeouts, then processed;
  dead_lettered      - a payout on the timeout account whose message arrives as its last
                       attempt (x-attempt = PROCESSOR_MAX_ATTEMPTS), so it is given up at once;
  skipped_duplicate  - the processed payout's message published again;
  malformed          - a body that is not JSON, and a message for a payout that does not exist.
"""

from __future__ import annotations

import secrets
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import aio_pika
import aiohttp
import sqlalchemy as sa

from payout_core.clients import BOOTSTRAP_CLIENT
from payout_core.db.engine import create_engine
from payout_core.db.tables import clients, payouts
from payout_core.messaging.contracts import (
    EXCHANGE,
    HEADER_ATTEMPT,
    HEADER_REQUEST_ID,
    ROUTING_KEY_CREATED,
    PayoutCreated,
)
from payout_core.settings import Settings
from payout_provider_sim.accounts import TRANSIENT as TIMEOUT_ACCOUNT
from tests.e2e.conftest import Stack
from tests.support.polling import eventually
from tests.support.scrape import scrape

PAID_ACCOUNT = "DE89370400440532013000"
NO_ACCOUNT = "000111111116"
WRONG_KEY = "sk_not_a_key_of_this_service_0000"
TERMINAL = ("processed", "failed", "cancelled")
# (scenario, account, currency) of the payouts created through the API.
CREATED = (
    ("processed", PAID_ACCOUNT, "USD"),
    ("failed", NO_ACCOUNT, "EUR"),
    ("deferred", TIMEOUT_ACCOUNT, "USD"),
)
# What the processor's payout_messages_total reads once the traffic has gone through.
EXPECTED_OUTCOMES = {
    "processed": 2,  # the paid payout and the deferred one
    "failed": 1,
    "deferred": 2,  # the provider's two 503s: an outage, no attempt used
    "retried": 0,
    "dead_lettered": 1,
    "skipped_duplicate": 1,
    "malformed": 2,
}


@dataclass
class Traffic:
    request_ids: dict[str, str] = field(default_factory=dict)  # scenario -> X-Request-ID
    payout_ids: dict[str, str] = field(default_factory=dict)  # scenario -> payout id
    currencies: Counter[str] = field(default_factory=Counter)  # of the API-created payouts

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(account for _, account, _ in CREATED)


def payout_body(account: str, currency: str) -> dict:
    return {
        "amount": "10.00",
        "currency": currency,
        "recipient_details": {"account": account, "name": "Observability Test"},
    }


async def create_payout(
    session: aiohttp.ClientSession, stack_api_url: str, auth: dict, body: dict, request_id: str
) -> str:
    async with session.post(
        f"{stack_api_url}/api/payouts/", json=body, headers={**auth, "X-Request-ID": request_id}
    ) as resp:
        assert resp.status == 201, await resp.text()
        return (await resp.json())["id"]


async def wait_terminal(session: aiohttp.ClientSession, stack: Stack, payout_id: str) -> str:
    async def terminal() -> str | None:
        async with session.get(
            f"{stack.api.url}/api/payouts/{payout_id}/", headers=stack.auth
        ) as resp:
            status = (await resp.json())["status"]
        return status if status in TERMINAL else None

    return await eventually(terminal, timeout=15, what=f"payout {payout_id} terminal")


async def wait_outcomes(session: aiohttp.ClientSession, stack: Stack) -> None:
    """Until the processor has counted exactly the expected outcomes."""

    async def counted() -> bool:
        processor = await scrape(session, stack.processor.url)
        return all(
            processor.value("payout_messages_total", outcome=outcome) == n
            for outcome, n in EXPECTED_OUTCOMES.items()
        )

    await eventually(counted, timeout=15, what=f"processor outcomes {EXPECTED_OUTCOMES}")


async def publish(amqp_url: str, messages: list[tuple[bytes, dict[str, str]]]) -> None:
    """Publish raw messages to the payouts exchange, as the relay would (confirmed)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(EXCHANGE)
        for body, headers in messages:
            await exchange.publish(
                aio_pika.Message(body, headers=headers, content_type="application/json"),
                routing_key=ROUTING_KEY_CREATED,
            )


async def insert_pending_payout(database_url: str, request_id: str) -> uuid.UUID:
    """A pending payout of the bootstrap client that cannot be paid (no account: an error of
    ours at every attempt, never an outage), written straight to the database (no outbox row:
    the test publishes its message itself)."""
    engine = create_engine(database_url, pool_size=1)
    payout_id = uuid.uuid4()
    try:
        async with engine.begin() as conn:
            client_id = (
                await conn.execute(
                    sa.select(clients.c.id).where(clients.c.name == BOOTSTRAP_CLIENT)
                )
            ).scalar_one()
            await conn.execute(
                payouts.insert().values(
                    id=payout_id,
                    client_id=client_id,
                    amount=Decimal("10.00"),
                    currency="USD",
                    recipient_details={"account": None, "name": "Observability Test"},
                    status="pending",
                    request_id=request_id,
                )
            )
    finally:
        await engine.dispose()
    return payout_id


async def http_errors(session: aiohttp.ClientSession, stack: Stack) -> None:
    """4xx answers on the payout routes: the raw id must never become a label."""
    base = f"{stack.api.url}/api/payouts/"
    async with session.get(base + "not-a-payout-id/", headers=stack.auth) as resp:
        assert resp.status == 404
    async with session.get(base + f"{uuid.uuid4()}/events/", headers=stack.auth) as resp:
        assert resp.status == 404
    async with session.get(base, headers={"Authorization": f"Bearer {WRONG_KEY}"}) as resp:
        assert resp.status == 401
    async with session.post(base, json={"amount": "-1"}, headers=stack.auth) as resp:
        assert resp.status == 422


async def run_every_outcome(session: aiohttp.ClientSession, stack: Stack) -> Traffic:
    """Drive the traffic described above and wait until the processor has counted all of it."""
    traffic = Traffic()
    run = secrets.token_hex(4)
    for scenario, account, currency in CREATED:
        rid = f"obs-{scenario}-{run}"
        traffic.request_ids[scenario] = rid
        traffic.payout_ids[scenario] = await create_payout(
            session, stack.api.url, stack.auth, payout_body(account, currency), rid
        )
        traffic.currencies[currency] += 1

    rid = traffic.request_ids["dead_lettered"] = f"obs-dead_lettered-{run}"
    dead = await insert_pending_payout(stack.infra.database_url, rid)
    traffic.payout_ids["dead_lettered"] = str(dead)
    last_attempt = Settings.from_env(stack.env).processor_max_attempts
    await publish(
        stack.infra.amqp_url,
        [
            (
                PayoutCreated(dead, datetime.now(UTC)).to_body(),
                {HEADER_REQUEST_ID: rid, HEADER_ATTEMPT: str(last_attempt)},
            ),
            (b"{not json", {HEADER_REQUEST_ID: f"obs-malformed-{run}"}),
            (PayoutCreated(uuid.uuid4(), datetime.now(UTC)).to_body(), {}),
        ],
    )

    for payout_id in traffic.payout_ids.values():
        await wait_terminal(session, stack, payout_id)
    processed = traffic.payout_ids["processed"]
    # A redelivery, as the reconciler would send it: same payout, same request id.
    await publish(
        stack.infra.amqp_url,
        [
            (
                PayoutCreated(uuid.UUID(processed), datetime.now(UTC)).to_body(),
                {HEADER_REQUEST_ID: traffic.request_ids["processed"]},
            )
        ],
    )
    async with session.get(
        f"{stack.api.url}/api/payouts/{processed}/events/", headers=stack.auth
    ) as resp:
        assert resp.status == 200
    async with session.get(f"{stack.api.url}/api/payouts/?limit=10", headers=stack.auth) as resp:
        assert resp.status == 200
    await http_errors(session, stack)
    await wait_outcomes(session, stack)
    return traffic

"""Webhooks end to end (issue 17): API, processor and provider as real processes, an aiohttp
receiver, signatures checked by the `standardwebhooks` library."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import aiohttp
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from payout_core.clients import create_client
from payout_core.db.engine import create_engine
from tests.e2e.conftest import BOOTSTRAP_KEY, Stack
from tests.e2e.test_pipeline import create, payout, wait_terminal
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.scrape import metric_value
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e
PAID_ACCOUNT = "DE89370400440532013000"
NO_ACCOUNT = "000111111116"  # the provider answers no_account


@pytest.fixture
def stack_env(fresh_infra: Infra) -> dict[str, str]:
    return fresh_infra.env(
        API_BOOTSTRAP_KEY=BOOTSTRAP_KEY,
        WEBHOOK_TIMEOUT_S="1",
        WEBHOOK_SECRET_OVERLAP_S="3",
        # Ten retries a second apart: a backlog outlives a few failed attempts.
        WEBHOOK_RETRY_SCHEDULE_S=",".join(["1"] * 10),
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def add_endpoint(session, stack: Stack, url: str, events: list[str]) -> dict:
    async with session.post(
        f"{stack.api.url}/api/webhook-endpoints/",
        json={"url": url, "enabled_events": events},
        headers=stack.auth,
    ) as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


async def deliveries(session, stack: Stack, endpoint_id: str) -> list[dict]:
    url = f"{stack.api.url}/api/webhook-endpoints/{endpoint_id}/deliveries/"
    async with session.get(url, headers=stack.auth) as resp:
        assert resp.status == 200
        return (await resp.json())["results"]


def verified(received, secret: str) -> dict:
    return Webhook(secret).verify(received.body, received.headers)


async def test_a_processed_payout_sends_three_signed_events(stack, receiver, session):
    endpoint = await add_endpoint(session, stack, receiver.url, ["*"])
    created = await create(session, stack, payout(PAID_ACCOUNT))
    final = await wait_terminal(session, stack, created["id"])
    got = await eventually(
        lambda: _async(len(receiver.received) >= 3 and receiver.received),
        timeout=20,
        what="three events",
    )
    events = {r.event["type"]: verified(r, endpoint["secret"]) for r in got}
    assert set(events) == {"payout.created", "payout.processing", "payout.processed"}
    assert events["payout.processed"]["data"]["object"] == final
    assert events["payout.created"]["data"]["object"]["status"] == "pending"
    assert all(r.webhook_id == r.event["id"] for r in got)
    with pytest.raises(WebhookVerificationError):
        verified(got[0], "whsec_" + "A" * 43 + "=")
    succeeded = await eventually(
        lambda: _metric_at_least(
            stack, "payout_webhook_deliveries_total", {"outcome": "succeeded"}, 3
        ),
        what="the deliveries metric",
    )
    assert succeeded >= 3


async def test_a_receiver_failing_twice_gets_the_same_webhook_id_a_third_time(
    stack, receiver, session
):
    receiver.statuses = [500, 500]
    endpoint = await add_endpoint(session, stack, receiver.url, ["payout.created"])
    await create(session, stack, payout(PAID_ACCOUNT))
    await eventually(lambda: _async(len(receiver.received) >= 3), timeout=20, what="3 attempts")
    assert len({r.webhook_id for r in receiver.received}) == 1
    attempts = await eventually(
        lambda: _attempts(session, stack, endpoint["id"], 3), what="3 attempts recorded"
    )
    assert [(a["attempt"], a["response_status"], a["succeeded"]) for a in attempts] == [
        (3, 200, True),
        (2, 500, False),
        (1, 500, False),
    ]
    assert attempts[1]["error"] == "HTTP 500"


async def test_a_filtered_endpoint_receives_only_its_types_and_no_other_clients(
    stack, receiver, session
):
    everything = await Receiver().start()
    stranger = await Receiver().start()
    engine = create_engine(stack.infra.database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            other_key = await create_client(conn, "another-client")
        other = dataclasses.replace(stack, key=other_key)
        await add_endpoint(session, other, stranger.url, ["*"])
        await add_endpoint(session, stack, receiver.url, ["payout.failed"])
        await add_endpoint(session, stack, everything.url, ["*"])
        for account in (PAID_ACCOUNT, NO_ACCOUNT):
            await wait_terminal(
                session, stack, (await create(session, stack, payout(account)))["id"]
            )
        # Each event's fan-out orders every matching endpoint at once: once the catch-all has
        # all six, the other endpoints' orders exist too; wait for the filtered one's delivery.
        await eventually(lambda: _async(len(everything.received) >= 6), timeout=20, what="6")
        await eventually(lambda: _async(receiver.received), what="the failed event")
        assert [r.event["type"] for r in receiver.received] == ["payout.failed"]
        assert stranger.received == []  # another client's endpoint gets none of these
    finally:
        await engine.dispose()
        await everything.stop()
        await stranger.stop()


async def test_the_processor_killed_mid_delivery_delivers_after_its_restart(
    stack, receiver, session
):
    killed_during_request: list[bool] = []

    async def kill_processor(_got) -> None:
        if not killed_during_request:
            stack.processor.kill()  # the POST is open: no answer will reach the processor
            killed_during_request.append(True)

    receiver.before_answer = kill_processor
    await add_endpoint(session, stack, receiver.url, ["payout.created"])
    await create(session, stack, payout(PAID_ACCOUNT))
    await eventually(lambda: _async(killed_during_request), timeout=20, what="the first POST")
    stack.processor = stack.processor.restarted()
    stack.started.append(stack.processor.start())
    await eventually(lambda: _async(len(receiver.received) >= 2), timeout=30, what="redelivery")
    assert receiver.received[0].webhook_id == receiver.received[1].webhook_id


async def test_an_endpoint_failing_longer_than_the_limit_is_disabled_visibly(stack, session):
    assert stack.processor.stop() == 0
    stack.new_processor("disabling", WEBHOOK_DISABLE_AFTER_S="1").start()
    failing = await Receiver(statuses=[500] * 100).start()
    try:
        endpoint = await add_endpoint(session, stack, failing.url, ["payout.created"])
        await create(session, stack, payout(PAID_ACCOUNT))
        url = f"{stack.api.url}/api/webhook-endpoints/{endpoint['id']}/"

        async def disabled():
            async with session.get(url, headers=stack.auth) as resp:
                shown = await resp.json()
            return shown if shown["status"] == "disabled" else None

        shown = await eventually(disabled, timeout=20, what="the endpoint disabled")
        assert shown["disabled_reason"] == "failing" and shown["failing_since"] is not None
        attempts = len(failing.received)
        assert attempts >= 2  # failed for a second or more before it was disabled
        # Enabled again by the client: a fresh start.
        async with session.patch(url, json={"status": "enabled"}, headers=stack.auth) as resp:
            again = await resp.json()
        assert (again["status"], again["failing_since"]) == ("enabled", None)
    finally:
        await failing.stop()


async def test_a_backlog_drains_when_the_receiver_returns(stack, session):
    down = Receiver()  # not listening: connections refused
    endpoint = await add_endpoint(session, stack, down.url, ["payout.created"])
    ids = [(await create(session, stack, payout(PAID_ACCOUNT)))["id"] for _ in range(5)]
    await eventually(
        lambda: _attempts(session, stack, endpoint["id"], 5), timeout=20, what="failed attempts"
    )
    assert not any(a["succeeded"] for a in await deliveries(session, stack, endpoint["id"]))
    pending = await eventually(
        lambda: _metric_at_least(stack, "payout_webhook_pending", {}, 1),
        timeout=15,
        what="the backlog in payout_webhook_pending",
    )
    assert pending <= 5
    await down.start()
    try:
        await eventually(
            lambda: _async({r.event["data"]["object"]["id"] for r in down.received} == set(ids)),
            timeout=30,
            what="the backlog delivered",
        )
    finally:
        await down.stop()


async def test_redelivery_sends_the_event_again_with_its_id(stack, receiver, session):
    await add_endpoint(session, stack, receiver.url, ["payout.created"])
    await create(session, stack, payout(PAID_ACCOUNT))
    first = (await eventually(lambda: _async(receiver.received), timeout=20, what="event"))[0]
    async with session.post(
        f"{stack.api.url}/api/events/{first.webhook_id}/redeliver/", headers=stack.auth
    ) as resp:
        assert resp.status == 202
    await eventually(lambda: _async(len(receiver.received) >= 2), timeout=20, what="again")
    assert receiver.received[1].webhook_id == first.webhook_id
    assert receiver.received[1].body == first.body


async def test_rotation_signs_with_both_secrets_during_the_overlap_then_the_new(
    stack, receiver, session
):
    endpoint = await add_endpoint(session, stack, receiver.url, ["payout.created"])
    old = endpoint["secret"]
    async with session.post(
        f"{stack.api.url}/api/webhook-endpoints/{endpoint['id']}/rotate-secret/",
        headers=stack.auth,
    ) as resp:
        new = (await resp.json())["secret"]
    await create(session, stack, payout(PAID_ACCOUNT))
    during = (await eventually(lambda: _async(receiver.received), timeout=20, what="event"))[0]
    assert len(during.signatures) == 2
    verified(during, old)
    verified(during, new)

    async def single_signed():
        # Redeliver until the overlap (3 s here) has passed: then one signature only.
        async with session.post(
            f"{stack.api.url}/api/events/{during.webhook_id}/redeliver/", headers=stack.auth
        ) as resp:
            assert resp.status == 202
        await eventually(
            lambda: _async(len(receiver.received) > count), timeout=20, what="redelivery"
        )
        return len(receiver.received[-1].signatures) == 1

    count = len(receiver.received)
    while not await single_signed():
        count = len(receiver.received)
    after = receiver.received[-1]
    verified(after, new)
    with pytest.raises(WebhookVerificationError):
        verified(after, old)


async def test_the_processor_refuses_private_and_plain_urls_at_delivery(stack, session):
    """Saved while the API allowed them (as in development); a processor with the default
    rule refuses them when it delivers, after resolving the name."""
    assert stack.processor.stop() == 0
    strict = stack.new_processor("strict", WEBHOOK_ALLOW_PRIVATE_URLS="false").start()
    assert strict.running
    receiver = await Receiver().start()
    try:
        plain = await add_endpoint(session, stack, receiver.url, ["payout.created"])
        named = await add_endpoint(
            session, stack, f"https://localhost:{receiver.port}/hook", ["payout.created"]
        )
        await create(session, stack, payout(PAID_ACCOUNT))
        for endpoint, reason in ((plain, "https"), (named, "non-public address")):
            attempts = await eventually(
                lambda e=endpoint: _attempts(session, stack, e["id"], 1),
                timeout=20,
                what="an attempt",
            )
            assert not attempts[-1]["succeeded"]
            assert reason in attempts[-1]["error"], attempts[-1]
        assert receiver.received == []
    finally:
        await receiver.stop()


async def test_a_slow_receiver_does_not_delay_payouts(stack, receiver, session):
    """With one delivery at a time and a receiver that answers after the timeout, 30 events
    need 30 s or more to deliver; the payouts are all processed while most still wait."""
    assert stack.processor.stop() == 0
    stack.new_processor("slow-hooks", WEBHOOK_CONCURRENCY="1").start()
    receiver.delay_s = 3  # WEBHOOK_TIMEOUT_S is 1
    await add_endpoint(session, stack, receiver.url, ["*"])
    ids = [(await create(session, stack, payout(PAID_ACCOUNT)))["id"] for _ in range(10)]
    for pid in ids:
        assert (await wait_terminal(session, stack, pid, timeout=30))["status"] == "processed"
    assert len(receiver.received) < 30  # deliveries were still waiting: they did not gate it


async def _async(value):
    return value


async def _attempts(session, stack, endpoint_id: str, at_least: int) -> list[dict] | None:
    attempts = await deliveries(session, stack, endpoint_id)
    return attempts if len(attempts) >= at_least else None


async def _metric_at_least(
    stack: Stack, name: str, labels: dict[str, str], at_least: float
) -> float | None:
    value = await metric_value(stack.processor.url, name, labels)
    return value if value >= at_least else None

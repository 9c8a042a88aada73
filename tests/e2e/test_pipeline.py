"""The whole pipeline with both services as real processes: HTTP -> PostgreSQL -> outbox ->
RabbitMQ -> processor -> provider -> PostgreSQL."""

from __future__ import annotations

import aiohttp
import pytest

from payout_provider_sim.accounts import LOST_ANSWER, SLOW
from tests.e2e.conftest import Stack
from tests.support.polling import eventually
from tests.support.provider import executions

pytestmark = pytest.mark.e2e


def payout(account: str, amount: str = "10.00", currency: str = "USD") -> dict:
    return {
        "amount": amount,
        "currency": currency,
        "recipient_details": {"account": account, "name": "E2E"},
    }


async def create(session: aiohttp.ClientSession, stack: Stack, body: dict) -> dict:
    async with session.post(f"{stack.api.url}/api/payouts/", json=body, headers=stack.auth) as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


async def wait_terminal(session, stack, pid: str, timeout: float = 15) -> dict:
    async def terminal():
        async with session.get(f"{stack.api.url}/api/payouts/{pid}/", headers=stack.auth) as r:
            data = await r.json()
        return data if data["status"] in ("processed", "failed", "cancelled") else None

    return await eventually(terminal, timeout=timeout, what=f"payout {pid} terminal")


EXPECTED = [
    ("DE89370400440532013000", "processed", None),
    ("000123456789", "processed", None),
    ("000111111116", "failed", "no_account"),
    ("000111111113", "failed", "account_closed"),
    ("000222222227", "failed", "insufficient_funds"),
]


async def test_payouts_reach_the_status_the_provider_rules_say(stack: Stack):
    async with aiohttp.ClientSession() as session:
        created = [
            (await create(session, stack, payout(acc)), st, code) for acc, st, code in EXPECTED
        ]
        for data, status, code in created:
            final = await wait_terminal(session, stack, data["id"])
            assert final["status"] == status, final
            assert final["failure_code"] == code
            assert (final["failure_message"] is None) is (code is None)
            retryable = None if code is None else code == "insufficient_funds"
            assert final["failure_retryable"] is retryable
            assert final["processed_at"] is not None and final["version"] == 3
            async with session.get(
                f"{stack.api.url}/api/payouts/{data['id']}/events/", headers=stack.auth
            ) as r:
                events = (await r.json())["results"]
            assert [(e["from"], e["to"]) for e in events] == [
                (None, "pending"),
                ("pending", "processing"),
                ("processing", status),
            ]


async def test_timeout_account_is_retried_then_processed(stack: Stack):
    async with aiohttp.ClientSession() as session:
        data = await create(session, stack, payout("000999999991"))
        final = await wait_terminal(session, stack, data["id"])
        assert final["status"] == "processed"
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{stack.processor.url}/metrics") as r,
    ):
        text = await r.text()
    # Two 503s: in doubt, deferred without using up an attempt.
    assert 'payout_deferrals_total{reason="in_doubt"} 2.0' in text
    assert 'payout_messages_total{outcome="retried"} 0.0' in text


@pytest.mark.parametrize("account", [LOST_ANSWER, SLOW], ids=["lost-answer", "late-answer"])
async def test_an_answer_lost_or_late_ends_processed_after_a_lookup_executed_once(
    stack: Stack, account: str
):
    async with aiohttp.ClientSession() as session:
        data = await create(session, stack, payout(account))
        final = await wait_terminal(session, stack, data["id"])
    assert final["status"] == "processed"
    assert (await executions(stack.infra.provider_database_url))[data["id"]] == 1
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{stack.processor.url}/metrics") as r,
    ):
        text = await r.text()
    assert 'payout_deferrals_total{reason="in_doubt"} 0.0' not in text  # the answer was missed


async def test_cancelled_and_deleted_payouts_are_never_processed(stack: Stack):
    stack.processor.stop()
    async with aiohttp.ClientSession() as session:
        cancelled = await create(session, stack, payout("000123456789"))
        deleted = await create(session, stack, payout("000123456789"))
        url = f"{stack.api.url}/api/payouts/"
        async with session.patch(
            url + cancelled["id"] + "/", json={"status": "cancelled"}, headers=stack.auth
        ) as r:
            assert r.status == 200
        async with session.delete(url + deleted["id"] + "/", headers=stack.auth) as r:
            assert r.status == 204
        later = await create(session, stack, payout("000123456789"))
        stack.processor = stack.new_processor("processor-2").start()
        assert (await wait_terminal(session, stack, later["id"]))["status"] == "processed"
        async with session.get(url + cancelled["id"] + "/", headers=stack.auth) as r:
            assert (await r.json())["status"] == "cancelled"
        async with session.get(url + deleted["id"] + "/", headers=stack.auth) as r:
            assert r.status == 404
    # Never processed means no money moved: the provider has no transfer for either.
    paid = await executions(stack.infra.provider_database_url)
    assert paid[later["id"]] == 1
    assert paid[cancelled["id"]] == 0 and paid[deleted["id"]] == 0


async def test_created_while_processor_stopped_is_processed_once_it_starts(stack: Stack):
    assert stack.processor.stop() == 0
    async with aiohttp.ClientSession() as session:
        data = await create(session, stack, payout("DE89370400440532013000"))
        async with session.get(
            f"{stack.api.url}/api/payouts/{data['id']}/", headers=stack.auth
        ) as r:
            assert (await r.json())["status"] == "pending"
        stack.processor = stack.new_processor("processor-2").start()
        assert (await wait_terminal(session, stack, data["id"]))["status"] == "processed"


async def test_processed_payout_cannot_change(stack: Stack):
    async with aiohttp.ClientSession() as session:
        data = await create(session, stack, payout("DE89370400440532013000"))
        await wait_terminal(session, stack, data["id"])
        url = f"{stack.api.url}/api/payouts/{data['id']}/"
        for body in ({"amount": "1.00"}, {"status": "cancelled"}):
            async with session.patch(url, json=body, headers=stack.auth) as r:
                assert r.status == 409
        async with session.delete(url, headers=stack.auth) as r:
            assert r.status == 409

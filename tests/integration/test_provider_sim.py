"""The simulated provider behaves like a real one, seen through the processor's client: an
idempotency key replays its first result while retained and is forgotten afterwards; the test
accounts decline, fail transiently, lose their answer or answer late; executions are counted
in its own database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

from payout_core.provider_client import (
    DECLINED,
    EXECUTED,
    ProviderClient,
    ProviderInDoubt,
    ProviderUnreachable,
)
from payout_provider_sim.accounts import LOST_ANSWER, SLOW, TRANSIENT, TRANSIENT_FAILURES
from tests.support import infra
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.processes import free_port
from tests.support.provider import executions, provider_in_process

ACCOUNT = "DE89370400440532013000"


@pytest.fixture
def fresh_infra() -> Iterator[Infra]:
    """Overrides the shared one: only the provider's database (which it creates), no payout
    database or vhost."""
    name = infra.unique_name("payouts_sim")
    yield Infra(name, "", f"{infra.PG_BASE}/{name}", "")
    infra.drop_database(name + "_prov")


@pytest.fixture
async def client(provider_sim: str) -> AsyncIterator[ProviderClient]:
    client = ProviderClient(provider_sim, timeout_s=2.0)
    yield client
    await client.close()


async def send(client: ProviderClient, reference: str, account: str = ACCOUNT):
    return await client.transfer(reference, Decimal("12.34"), "EUR", account)


async def test_a_retained_key_replays_the_first_result_and_moves_money_once(
    client: ProviderClient, fresh_infra: Infra
):
    reference = str(uuid.uuid4())
    first, again = await send(client, reference), await send(client, reference)
    assert (first.status, first.replayed) == (EXECUTED, False)
    assert (again.status, again.replayed) == (EXECUTED, True)
    assert (await executions(fresh_infra.provider_database_url))[reference] == 1


async def test_concurrent_calls_with_one_key_execute_once(
    client: ProviderClient, fresh_infra: Infra
):
    reference = str(uuid.uuid4())
    answers = await asyncio.gather(*(send(client, reference) for _ in range(5)))
    assert {a.status for a in answers} == {EXECUTED}
    assert sum(not a.replayed for a in answers) == 1
    assert (await executions(fresh_infra.provider_database_url))[reference] == 1


async def test_a_key_past_its_retention_executes_again(fresh_infra: Infra):
    """Why the processor looks a payout up before sending it again: the provider forgot."""
    async with provider_in_process(fresh_infra, PROVIDER_SIM_RETENTION_S="0") as url:
        client = ProviderClient(url, timeout_s=2.0)
        reference = str(uuid.uuid4())
        await send(client, reference)
        await send(client, reference)
        await client.close()
    assert (await executions(fresh_infra.provider_database_url))[reference] == 2


@pytest.mark.parametrize(
    ("account", "code"),
    [
        ("000111111116", "no_account"),
        ("000111111113", "account_closed"),
        ("000222222227", "insufficient_funds"),
    ],
)
async def test_declining_accounts_decline_with_their_code_and_lookups_agree(
    client: ProviderClient, account: str, code: str
):
    reference = str(uuid.uuid4())
    answer = await send(client, reference, account)
    assert (answer.status, answer.failure_code) == (DECLINED, code)
    looked_up = await client.lookup(reference)
    assert looked_up is not None and (looked_up.status, looked_up.failure_code) == (DECLINED, code)


async def test_an_unknown_reference_is_not_found(client: ProviderClient):
    assert await client.lookup(str(uuid.uuid4())) is None


async def test_the_transient_account_fails_in_doubt_then_executes(
    client: ProviderClient, fresh_infra: Infra
):
    reference = str(uuid.uuid4())
    for _ in range(TRANSIENT_FAILURES):
        with pytest.raises(ProviderInDoubt):
            await send(client, reference, TRANSIENT)
        assert await client.lookup(reference) is None  # a 503 moved no money
    assert (await send(client, reference, TRANSIENT)).status == EXECUTED
    assert (await executions(fresh_infra.provider_database_url))[reference] == 1


async def test_the_lost_answer_account_executes_but_only_a_lookup_says_so(
    client: ProviderClient, fresh_infra: Infra
):
    reference = str(uuid.uuid4())
    for _ in range(2):  # a retry with the same key loses its answer too
        with pytest.raises(ProviderInDoubt) as raised:
            await send(client, reference, LOST_ANSWER)
        assert not isinstance(raised.value, ProviderUnreachable)
    looked_up = await client.lookup(reference)
    assert looked_up is not None and looked_up.status == EXECUTED
    assert (await executions(fresh_infra.provider_database_url))[reference] == 1


async def test_the_slow_account_executes_after_the_caller_gave_up_waiting(
    client: ProviderClient, fresh_infra: Infra
):
    reference = str(uuid.uuid4())
    with pytest.raises(ProviderInDoubt):
        await send(client, reference, SLOW)  # the client waits 2 s, the answer takes 3 s
    assert await client.lookup(reference) is None  # not yet executed

    async def executed() -> bool:
        found = await client.lookup(reference)
        return found is not None and found.status == EXECUTED

    await eventually(executed, timeout=10, what="the late execution")
    assert (await executions(fresh_infra.provider_database_url))[reference] == 1


async def test_a_provider_that_is_not_listening_is_unreachable():
    client = ProviderClient(f"http://127.0.0.1:{free_port()}", timeout_s=2.0)
    try:
        with pytest.raises(ProviderUnreachable):
            await send(client, str(uuid.uuid4()))
    finally:
        await client.close()

"""A POST whose COMMIT reaches PostgreSQL while its reply is lost (the connection dies with the
reply in flight, hit exactly by a proxy that reads the protocol): the client gets a 503, and
its retry with the same Idempotency-Key answers the payout that was stored, which is processed
once. This is the path docs/api.md promises a client that retries on 5xx."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from tests.e2e.conftest import Stack
from tests.support.infra import Infra
from tests.support.load import payout_body
from tests.support.payout_checks import assert_all_terminal_and_sound, fetch
from tests.support.tcp_proxy import TcpProxy
from tests.support.wire_taps import PgCommitReplyLost, Window

pytestmark = pytest.mark.e2e
WINDOW = Window(times=1)


@pytest.fixture
def stack_env(
    stack_env: dict[str, str], fresh_infra: Infra, tcp_proxy: Callable[..., TcpProxy]
) -> dict[str, str]:
    WINDOW.hits.clear()
    proxy = tcp_proxy(
        fresh_infra.database_url, lambda: PgCommitReplyLost(WINDOW, "INSERT INTO payouts")
    )
    return {**stack_env, "DATABASE_URL": proxy.proxied(fresh_infra.database_url)}


async def test_a_post_whose_commit_reply_is_lost_is_503_and_its_retry_replays_it(stack: Stack):
    body = payout_body()
    headers = {**stack.auth, "Idempotency-Key": "order-42-payout"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{stack.api.url}/api/payouts/", json=body, headers=headers) as r:
            first_status, first = r.status, await r.json()
        assert WINDOW.hits, "the COMMIT's reply was never intercepted"
        assert first_status == 503, first
        assert first["type"] == "/problems/service-unavailable"

        # The payout was committed although the client never heard of it.
        db = stack.infra.database_url
        (stored,) = [row[0] for row in await fetch(db, "SELECT id::text FROM payouts")]

        async with session.post(f"{stack.api.url}/api/payouts/", json=body, headers=headers) as r:
            assert r.status == 201
            assert r.headers["Idempotent-Replayed"] == "true"
            assert (await r.json())["id"] == stored
    assert len(WINDOW.hits) == 1
    await assert_all_terminal_and_sound(db, {"processed": 1})

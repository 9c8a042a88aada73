"""RabbitMQ unreachable (both services' connections cut through a proxy): the API keeps
accepting payouts into the outbox; once the broker is back, everything is published and
processed, without restarting anything."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack
from tests.support.infra import Infra
from tests.support.load import create_payouts
from tests.support.payout_checks import assert_all_terminal_and_sound, fetch, status_counts
from tests.support.polling import eventually_sync
from tests.support.processes import http_status
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e
PAYOUTS = 500


@pytest.fixture
def stack_env(stack_env: dict[str, str], fresh_infra: Infra, broker_proxy: TcpProxy):
    return {**stack_env, "AMQP_URL": broker_proxy.proxied(fresh_infra.amqp_url)}


def readiness(stack: Stack) -> tuple[int, int]:
    return http_status(stack.api.url + "/readyz"), http_status(stack.processor.url + "/readyz")


async def test_payouts_accepted_while_the_broker_is_away_all_complete_once_it_is_back(
    stack: Stack, broker_proxy: TcpProxy
):
    broker_proxy.cut()
    eventually_sync(lambda: readiness(stack) == (503, 503), what="both not ready", timeout=20)

    load = await create_payouts([stack.api.url], stack.auth, count=PAYOUTS)
    assert load.statuses == {201: PAYOUTS}, load.not_problems[:5]
    database = stack.infra.database_url
    assert await status_counts(database) == {"pending": PAYOUTS}
    unpublished = await fetch(database, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
    assert unpublished[0][0] == PAYOUTS

    broker_proxy.restore()
    await assert_all_terminal_and_sound(database, {"processed": PAYOUTS}, timeout=60)
    eventually_sync(lambda: readiness(stack) == (200, 200), what="both ready again", timeout=20)

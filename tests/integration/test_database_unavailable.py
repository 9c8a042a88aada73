"""PostgreSQL going away under the API (through a proxy that cuts connections): every way it
can fail answers 503 problem+json with Retry-After, never 500, and service resumes on its own."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from payout_api.app import create_app
from payout_api.keys import BROKER
from payout_core.settings import Settings
from tests.support.load import PROBLEM_JSON, payout_body
from tests.support.polling import eventually
from tests.support.postgres_refusal import refuse_with
from tests.support.tcp_proxy import Answer, TcpProxy

OUTAGES: dict[str, Answer | None] = {
    "refused": None,  # the server is gone: connection refused
    "starting-up": refuse_with("57P03", "the database system is starting up"),
    "shutting-down": refuse_with("57P01", "terminating connection due to administrator command"),
    "too-many-connections": refuse_with("53300", "sorry, too many clients already"),
}


@pytest.fixture
def database(settings: Settings) -> Iterator[TcpProxy]:
    proxy = TcpProxy.to_url(settings.database_url).start()
    yield proxy
    proxy.close()


@pytest.fixture
async def api_via_proxy(aiohttp_client, settings: Settings, database: TcpProxy):
    proxied = dataclasses.replace(settings, database_url=database.proxied(settings.database_url))
    client = await aiohttp_client(await create_app(proxied))
    await client.app[BROKER].wait_ready(timeout=15)
    return client


@pytest.mark.parametrize("answer", OUTAGES.values(), ids=OUTAGES.keys())
async def test_database_outage_gives_503_problems_then_service_resumes(
    api_via_proxy, auth, database: TcpProxy, answer: Answer | None
):
    api = api_via_proxy
    assert (await api.get("/api/payouts/", headers=auth)).status == 200  # the pool is warm

    database.cut(answer)
    for method, body in (("GET", None), ("POST", payout_body())):
        resp = await api.request(method, "/api/payouts/", json=body, headers=auth)
        assert resp.status == 503, await resp.text()
        assert resp.content_type == PROBLEM_JSON
        assert (await resp.json())["type"].endswith("/service-unavailable")
        assert resp.headers["Retry-After"] == "2"
    assert (await api.get("/readyz")).status == 503

    database.restore()

    async def created() -> bool:
        resp = await api.post("/api/payouts/", json=payout_body(), headers=auth)
        return resp.status == 201

    await eventually(created, what="201 after the outage")
    assert (await api.get("/readyz")).status == 200

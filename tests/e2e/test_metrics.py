"""/metrics of both real services while payouts flow: names, labels and values."""

from __future__ import annotations

import re

import aiohttp
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.traffic import (
    CREATED,
    EXPECTED_OUTCOMES,
    create_payout,
    payout_body,
    run_every_outcome,
    wait_terminal,
)
from tests.observability.known_metrics import KNOWN_METRICS
from tests.support.polling import eventually, eventually_sync
from tests.support.processes import free_port, http_status
from tests.support.scrape import Scrape, scrape

pytestmark = pytest.mark.e2e
UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
OUTBOX_GAUGES = ("payout_outbox_pending", "payout_outbox_oldest_age_seconds")


def family(metric_name: str, metric_type: str) -> str:
    """The family name prometheus_client's parser reports (counters lose `_total`)."""
    return metric_name.removesuffix("_total") if metric_type == "counter" else metric_name


def assert_exposes_only_its_own(service: str, scraped: Scrape) -> None:
    for metric in KNOWN_METRICS.values():
        if "scrape" in metric.services:
            continue
        exposed = family(metric.name, metric.type) in scraped.families
        assert exposed == (service in metric.services), (service, metric.name)
    declared = {family(m.name, m.type) for m in KNOWN_METRICS.values() if service in m.services}
    stray = {f for f in scraped.families if f.startswith("payout_")} - declared
    assert not stray, f"{service} exposes undeclared metrics {stray}"


def assert_labels_bounded(scraped: Scrape) -> None:
    for name, label, value in scraped.label_values():
        assert not UUID.search(value), f"an id in {name}{{{label}={value!r}}}"
        if label == "route":
            assert value.startswith("/") or value == "unmatched", (name, value)


async def test_metrics_move_as_payouts_flow(stack: Stack):
    async with aiohttp.ClientSession() as session:
        traffic = await run_every_outcome(session, stack)
        api = await scrape(session, stack.api.url)
        processor = await scrape(session, stack.processor.url)

        async def outbox_drained() -> Scrape | None:
            scraped = await scrape(session, stack.api.url)
            return scraped if all(scraped.value(g) == 0 for g in OUTBOX_GAUGES) else None

        drained = await eventually(outbox_drained, timeout=5, what="outbox gauges at 0")

        depths: list[float] = []

        async def all_dead_lettered() -> bool:
            scraped = await scrape(session, stack.processor.url)
            depths.append(scraped.value("payout_queue_depth", queue="payouts.dead"))
            return depths[-1] == 3

        # Dead-lettered, not JSON, unknown payout. The queue gauges are refreshed every 5 s and
        # the dead-lettered payout arrives after its retries: a refresh may see the other two
        # first, so the depth is polled until it is 3 (a depth past 3 never passes).
        try:
            await eventually(all_dead_lettered, timeout=20, what="payouts.dead depth of 3")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; depths seen last: {depths[-5:]}") from None
    created = len(CREATED)

    # API: creations, its transitions, the relay, HTTP by route template and status.
    for currency, n in traffic.currencies.items():
        assert api.value("payout_created_total", currency=currency) == n
    assert api.value("payout_status_transitions_total", **{"from": "none", "to": "pending"}) == (
        created
    )
    assert drained.value("payout_published_total") == created
    assert drained.value("payout_publish_failures_total") == 0
    post = {"method": "POST", "route": "/api/payouts/"}
    assert api.value("payout_http_requests_total", **post, status="201") == created
    assert api.value("payout_http_requests_total", **post, status="422") == 1
    assert api.value("payout_http_request_duration_seconds_count", **post) == created + 1
    one = {"method": "GET", "route": "/api/payouts/{id}/"}
    assert api.value("payout_http_requests_total", **one, status="200") >= len(traffic.payout_ids)
    assert api.value("payout_http_requests_total", **one, status="404") == 1
    events = {"method": "GET", "route": "/api/payouts/{id}/events/"}
    assert api.value("payout_http_requests_total", **events, status="200") == 1
    assert api.value("payout_http_requests_total", **events, status="404") == 1
    assert api.value("payout_http_requests_total", route="/api/payouts/", status="401") == 1

    # Processor: every outcome, its transitions, latencies, in-flight, its own HTTP routes.
    for outcome, n in EXPECTED_OUTCOMES.items():
        assert processor.value("payout_messages_total", outcome=outcome) == n
    moved = {("pending", "processing"): 4, ("processing", "processed"): 2}
    moved[("processing", "failed")] = 2  # no_account, and the dead-lettered one
    for (old, new), n in moved.items():
        assert processor.value("payout_status_transitions_total", **{"from": old, "to": new}) == n
    # Every message that named a payout was timed: all but the one that is not JSON.
    handled = sum(EXPECTED_OUTCOMES.values()) - 1
    assert processor.value("payout_processing_duration_seconds_count") == handled
    assert processor.value("payout_end_to_end_seconds_count") == 4
    assert processor.value("payout_end_to_end_seconds_sum") > 0
    assert processor.value("payout_processor_inflight") == 0
    assert processor.value("payout_queue_consumers", queue="payouts.process") == 1
    metrics_route = {"method": "GET", "route": "/metrics", "status": "200"}
    assert processor.value("payout_http_requests_total", **metrics_route) >= 1
    assert processor.value("payout_http_requests_total", route="/readyz", status="200") >= 1

    assert_exposes_only_its_own("api", api)
    assert_exposes_only_its_own("processor", processor)
    for scraped in (api, processor):
        assert_labels_bounded(scraped)
        assert scraped.value("process_resident_memory_bytes") > 0


async def test_outbox_gauges_rise_while_the_broker_is_away_and_return_to_zero(stack: Stack):
    assert stack.api.stop() == 0  # its relay would publish the row at once
    closed_port = free_port()
    blind = stack.new_api(
        "api-without-broker", AMQP_URL=f"amqp://guest:guest@127.0.0.1:{closed_port}/"
    )
    blind.start(wait_ready=False)
    eventually_sync(lambda: http_status(blind.url + "/healthz") == 200, what="api alive")
    async with aiohttp.ClientSession() as session:
        payout_id = await create_payout(
            session, blind.url, stack.auth, payout_body(CREATED[0][1], "USD"), "obs-outbox"
        )

        async def stuck() -> bool:
            scraped = await scrape(session, blind.url)
            return (
                scraped.value("payout_outbox_pending") == 1
                and scraped.value("payout_outbox_oldest_age_seconds") > 0
                and scraped.value("payout_publish_failures_total") >= 1
            )

        await eventually(stuck, timeout=10, what="outbox gauges and failures rising")

        stack.api = stack.new_api("api-2").start()

        async def drained() -> bool:
            scraped = await scrape(session, blind.url)
            return all(scraped.value(g) == 0 for g in OUTBOX_GAUGES)

        await eventually(drained, timeout=10, what="outbox gauges back at 0")
        assert await wait_terminal(session, stack, payout_id) == "processed"
        assert (await scrape(session, stack.api.url)).value("payout_published_total") == 1

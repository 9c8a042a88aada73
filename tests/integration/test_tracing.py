"""One payout, one trace (issue 16): the API's request, the relay's publish, the processor's
work, its provider calls and retries, and its webhook deliveries share the client's trace id,
each span the child of the one before; batched statements are spans of their own, linked both
ways.

The API, the relay, the processor and the simulated provider run in this process, traced into
the SDK's in-memory exporter (tests/e2e/test_tracing.py exports from real processes).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from payout_core.messaging.contracts import RETRY_QUEUE_PREFIX
from payout_core.settings import Settings
from payout_processor.wiring import bootstrap
from tests.support.infra import Infra
from tests.support.load import NORMAL_ACCOUNT, TIMEOUT_ACCOUNT, payout_body
from tests.support.payout_checks import fetch, wait_all_terminal
from tests.support.polling import eventually
from tests.support.provider import provider_in_process
from tests.support.traces import in_memory_tracing
from tests.support.webhook_receiver import Receiver

CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    with in_memory_tracing() as exporter:
        yield exporter


@pytest.fixture
async def settings(exporter, fresh_infra: Infra) -> AsyncIterator[Settings]:
    """Overrides the session's: a database of this test's own, and quick retries. Created
    after tracing is installed, so the provider's and the API's servers are traced too."""
    async with provider_in_process(fresh_infra):
        yield Settings.from_env(
            fresh_infra.env(
                API_HOST="127.0.0.1", PROCESSOR_HTTP_PORT="0", PROCESSOR_RETRY_BASE_MS="50"
            )
        )


def _hex(number: int, width: int) -> str:
    return format(number, f"0{width}x")


def _trace(span: ReadableSpan) -> str:
    return _hex(span.context.trace_id, 32)


def _one(spans: list[ReadableSpan], what: str) -> ReadableSpan:
    assert len(spans) == 1, f"{what}: {[s.name for s in spans]}"
    return spans[0]


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def _linked(span: ReadableSpan, other: ReadableSpan) -> bool:
    return any(link.context.span_id == other.context.span_id for link in span.links)


async def _process(settings: Settings, exporter: InMemorySpanExporter, payouts: int) -> None:
    service = bootstrap(settings)
    await service.start()
    try:
        await wait_all_terminal(settings.database_url, payouts, timeout=30)

        async def finished() -> bool:  # the batch span ends after the statement's answer
            names = [s.name for s in exporter.get_finished_spans()]
            return names.count("finish processing") >= 1

        await eventually(finished, what="the finish batch's span")
    finally:
        await service.stop()


async def test_one_trace_from_the_request_to_the_providers_answer(api, auth, settings, exporter):
    created = await api.post(
        "/api/payouts/",
        json=payout_body(TIMEOUT_ACCOUNT),  # the provider answers 503 twice: two deferrals
        headers={**auth, "traceparent": TRACEPARENT, "tracestate": "vendor=1"},
    )
    assert created.status == 201
    payout_id = (await created.json())["id"]
    stored = await fetch(settings.database_url, "SELECT headers FROM outbox")
    await _process(settings, exporter, payouts=1)
    spans = list(exporter.get_finished_spans())
    in_trace = [s for s in spans if _trace(s) == CLIENT_TRACE_ID]

    # The API: the server span continues the client's trace, by the HTTP conventions.
    server = _one(
        [s for s in in_trace if s.kind is SpanKind.SERVER and s.name.startswith("POST /api")],
        "API span",
    )
    assert server.name == "POST /api/payouts/"
    assert _hex(server.parent.span_id, 16) == CLIENT_SPAN_ID
    assert server.attributes["http.route"] == "/api/payouts/"
    assert server.attributes["http.response.status_code"] == 201
    assert server.attributes["payout.id"] == payout_id
    assert str(server.context.trace_state.get("vendor")) == "1"
    # The outbox row holds the request's context beside its request id.
    headers = json.loads(stored[0]["headers"])
    assert CLIENT_TRACE_ID in headers["traceparent"] and headers["x-request-id"]
    assert headers["tracestate"] == "vendor=1"
    # Its statements: children, with the statement's text and no parameter values.
    statements = [s for s in _children(in_trace, server) if s.kind is SpanKind.CLIENT]
    assert statements, "no database span under the request"
    insert = next(
        s for s in statements if "INSERT INTO payouts" in s.attributes.get("db.query.text", "")
    )
    assert insert.attributes["db.system.name"] == "postgresql"
    assert "$1" in insert.attributes["db.query.text"]
    for span in spans:  # no span anywhere carries the account number
        for value in span.attributes.values():
            assert NORMAL_ACCOUNT not in str(value) and TIMEOUT_ACCOUNT not in str(value), span.name

    # The relay: the publish is the request's child; its batch a root linked both ways.
    publish = _one([s for s in in_trace if s.name == "publish payouts"], "relay publish")
    assert publish.kind is SpanKind.PRODUCER
    assert publish.parent.span_id == server.context.span_id
    assert publish.attributes["messaging.system"] == "rabbitmq"
    assert publish.attributes["messaging.destination.name"] == "payouts"
    assert publish.attributes["messaging.rabbitmq.destination.routing_key"] == "payout.created"
    assert publish.attributes["messaging.message.id"] == payout_id
    relay_batch = _one([s for s in spans if s.name == "outbox publish"], "relay batch")
    assert relay_batch.parent is None and _trace(relay_batch) != CLIENT_TRACE_ID
    assert any(link.context.span_id == server.context.span_id for link in relay_batch.links)
    assert _linked(publish, relay_batch)

    # The processor: three deliveries (two deferred by the provider's 503s), each a child of
    # the publish before it: the relay's, then each retry's, published from the process span.
    processes = sorted(
        (s for s in in_trace if s.name == "process payouts.process"), key=lambda s: s.start_time
    )
    assert len(processes) == 3, [s.name for s in in_trace]
    parent = publish
    for number, process in enumerate(processes, start=1):
        assert process.kind is SpanKind.CONSUMER
        assert process.parent.span_id == parent.context.span_id, f"delivery {number}"
        assert process.attributes["messaging.operation.type"] == "process"
        assert process.attributes["messaging.message.id"] == payout_id
        assert process.attributes["payout.id"] == payout_id
        if number < 3:  # deferred: the error is on the span, and the retry is its child
            assert process.status.status_code is StatusCode.ERROR
            assert any(e.name == "exception" for e in process.events)
            parent = _one(
                [s for s in _children(in_trace, process) if s.kind is SpanKind.PRODUCER],
                "retry publish",
            )
            assert parent.name == "publish amq.default"
            assert parent.attributes["messaging.rabbitmq.destination.routing_key"].startswith(
                RETRY_QUEUE_PREFIX
            )
    assert processes[-1].status.status_code is not StatusCode.ERROR

    # The provider call: a span with the payout id, the HTTP client span under it, and the
    # provider's own server span under that (traceparent went over HTTP).
    transfers = [s for s in in_trace if s.name == "provider transfer"]
    assert {t.parent.span_id for t in transfers} == {p.context.span_id for p in processes}
    for transfer in transfers:
        assert transfer.attributes["payout.id"] == payout_id
        http = _one(_children(in_trace, transfer), "provider HTTP call")
        assert http.kind is SpanKind.CLIENT
        assert http.attributes["http.request.method"] == "POST"
        provider_side = _one(_children(in_trace, http), "provider's server span")
        assert provider_side.kind is SpanKind.SERVER
    assert [t.status.status_code for t in transfers[:2]] == [StatusCode.ERROR] * 2

    # Batched status changes: roots of their own, linked to the process spans both ways.
    for name in ("start processing", "finish processing"):
        batches = [s for s in spans if s.name == name and any(_linked(s, p) for p in processes)]
        assert batches, name
        for batch in batches:
            assert batch.parent is None and _trace(batch) != CLIENT_TRACE_ID
            assert any(_linked(p, batch) for p in processes), name
            assert any(s.kind is SpanKind.CLIENT for s in _children(spans, batch)), name


async def test_a_request_without_traceparent_starts_a_trace(api, auth, settings, exporter):
    created = await api.post("/api/payouts/", json=payout_body(), headers=auth)
    assert created.status == 201
    await _process(settings, exporter, payouts=1)
    spans = list(exporter.get_finished_spans())
    server = _one([s for s in spans if s.name == "POST /api/payouts/"], "API span")
    assert server.parent is None
    in_trace = {s.name for s in spans if s.context.trace_id == server.context.trace_id}
    assert {"publish payouts", "process payouts.process", "provider transfer"} <= in_trace


async def test_webhook_deliveries_join_the_trace_of_the_status_change(
    api, auth, settings, exporter, webhook_receiver: Receiver
):
    receiver = webhook_receiver
    added = await api.post(
        "/api/webhook-endpoints/", json={"url": receiver.url, "enabled_events": ["*"]}, headers=auth
    )
    assert added.status == 201
    created = await api.post(
        "/api/payouts/", json=payout_body(), headers={**auth, "traceparent": TRACEPARENT}
    )
    assert created.status == 201
    payout_id = (await created.json())["id"]
    service = bootstrap(settings)
    await service.start()
    try:
        types = {"payout.created", "payout.processing", "payout.processed"}

        async def delivered() -> bool:  # the delivery span ends after the receiver's answer
            names = [s.name for s in exporter.get_finished_spans()]
            return names.count("webhook delivery") >= 3 and types <= {
                r.event["type"] for r in receiver.received
            }

        await eventually(delivered, timeout=30, what="three webhook deliveries")
    finally:
        await service.stop()
    spans = list(exporter.get_finished_spans())
    by_id = {s.context.span_id: s for s in spans}

    def ancestors(span: ReadableSpan) -> list[str]:
        names = []
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names

    # Each event's delivery is in the payout's trace, under the work that changed the status:
    # the API's request for payout.created, the processor's process span for the others.
    deliveries = [s for s in spans if s.name == "webhook delivery"]
    assert {_trace(s) for s in deliveries} == {CLIENT_TRACE_ID}
    by_type = {s.attributes["webhook.event.type"]: s for s in deliveries}
    assert set(by_type) == types
    for event_type, delivery in by_type.items():
        assert delivery.attributes["payout.id"] == payout_id
        assert delivery.status.status_code is not StatusCode.ERROR
        chain = ancestors(delivery)
        assert chain[:4] == [
            "process payouts.webhooks",  # the order for this endpoint
            "publish amq.default",  # published by the fan-out
            "process payouts.webhooks",  # the fan-out of the event
            "publish payouts",  # the relay's, of the outbox row the trigger wrote
        ], event_type
        created = event_type == "payout.created"
        cause = "POST /api/payouts/" if created else "process payouts.process"
        assert chain[4] == cause, (event_type, chain)
    # The POST is the delivery's HTTP client span, and the receiver got its traceparent.
    posts = {s.context.span_id: s for s in spans if s.kind is SpanKind.CLIENT and s.parent}
    sent = {r.event["type"]: r.headers["traceparent"] for r in receiver.received}
    for event_type, delivery in by_type.items():
        post = _one(
            [s for s in posts.values() if s.parent.span_id == delivery.context.span_id],
            "webhook POST",
        )
        assert post.attributes["http.request.method"] == "POST"
        assert post.attributes["http.response.status_code"] == 200
        assert sent[event_type] == f"00-{CLIENT_TRACE_ID}-{_hex(post.context.span_id, 16)}-01"


async def test_a_cancellation_writes_its_webhook_event_in_the_request_trace(
    api, auth, settings, exporter
):
    added = await api.post(
        "/api/webhook-endpoints/",
        json={"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]},
        headers=auth,
    )
    assert added.status == 201
    created = await api.post("/api/payouts/", json=payout_body(), headers=auth)
    payout_id = (await created.json())["id"]
    cancelled = await api.patch(
        f"/api/payouts/{payout_id}",
        json={"status": "cancelled"},
        headers={**auth, "traceparent": TRACEPARENT},
    )
    assert cancelled.status == 200
    rows = await fetch(
        settings.database_url,
        "SELECT e.type, o.headers FROM outbox o JOIN webhook_events e"
        f" ON e.id = (o.payload->>'event_id')::uuid WHERE e.payout_id = '{payout_id}'",
    )
    traces = {row["type"]: json.loads(row["headers"])["traceparent"][3:35] for row in rows}
    assert traces["payout.cancelled"] == CLIENT_TRACE_ID  # the PATCH's (transition())
    assert traces["payout.created"] not in {CLIENT_TRACE_ID, ""}  # the POST's own trace

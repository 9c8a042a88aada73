"""One payout, one trace (issue 16): the API's request, the relay's publish, the processor's
work, its provider calls and retries share the client's trace id, each span the child of the
one before; batched statements are spans of their own, linked both ways.

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

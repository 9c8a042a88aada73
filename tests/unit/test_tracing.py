"""payout_core.tracing on its own: when it turns on, what the SDK is built from, the sampler's
filter for statements outside any span, and the trace ids in log lines."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from payout_core import tracing
from tests.support.traces import in_memory_tracing

OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    with in_memory_tracing() as exporter:
        yield exporter


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_on_only_with_an_endpoint(env: dict[str, str], on: bool) -> None:
    assert tracing.exporting_configured(env) is on


def test_without_an_endpoint_configure_changes_nothing() -> None:
    assert tracing.configure(tracing.SERVICE_API) is False
    assert not tracing.enabled()


def test_the_service_name_defaults_per_process_and_the_environment_overrides_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = tracing.new_provider(tracing.SERVICE_PROCESSOR).resource.attributes["service.name"]
    assert name == "payout-processor"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "payouts-eu")
    name = tracing.new_provider(tracing.SERVICE_PROCESSOR).resource.attributes["service.name"]
    assert name == "payouts-eu"


def test_the_sampler_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.1")
    description = tracing.new_provider(tracing.SERVICE_API).sampler.get_description()
    assert "TraceIdRatioBased{0.1}" in description


def test_a_statement_outside_any_span_is_not_traced(exporter: InMemorySpanExporter) -> None:
    statement = {"db.system.name": "postgresql", "db.query.text": "SELECT 1"}
    tracer = tracing._state.tracer
    tracer.start_span("SELECT", kind=SpanKind.CLIENT, attributes=statement).end()
    with tracing.span("work"):
        tracer.start_span("SELECT", kind=SpanKind.CLIENT, attributes=statement).end()
    tracer.start_span(
        "lookup", kind=SpanKind.CLIENT, attributes={"http.request.method": "GET"}
    ).end()
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["SELECT", "lookup", "work"]  # the statement in a span, not the orphan


def test_log_lines_carry_the_current_span(exporter: InMemorySpanExporter) -> None:
    assert tracing.add_trace_ids(None, "info", {}) == {}
    with tracing.span("work") as span:
        line = tracing.add_trace_ids(None, "info", {"request_id": "r"})
    context = span.get_span_context()
    assert line == {
        "request_id": "r",
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


def test_a_message_carries_its_publish_span(exporter: InMemorySpanExporter) -> None:
    with tracing.span("request") as request:
        stored = tracing.context_headers()
    assert stored["traceparent"].split("-")[1] == format(
        request.get_span_context().trace_id, "032x"
    )
    span, headers = tracing.start_publish(
        "payouts", "payout.created", "m-1", parent=tracing.context_from(stored), payout_id="p"
    )
    tracing.end_all([span])
    with tracing.process_span("payouts.process", "payout.created", "m-1", headers) as process:
        pass
    publish, consumed = exporter.get_finished_spans()[-2:]
    assert publish.parent.span_id == request.get_span_context().span_id
    assert consumed.context.span_id == process.get_span_context().span_id
    assert consumed.parent.span_id == publish.context.span_id
    assert publish.attributes["payout.id"] == "p"


def test_a_context_in_bytes_headers_is_read(exporter: InMemorySpanExporter) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    context = tracing.context_from({"traceparent": traceparent.encode()})
    with tracing.span("child", context=context) as child:
        pass
    assert format(child.get_span_context().trace_id, "032x") == traceparent.split("-")[1]
    assert tracing.context_from({"x-request-id": "r"}) is None

"""Distributed tracing: OpenTelemetry with W3C Trace Context, one trace per payout.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: then
no SDK, no instrumentation and no context in outbox rows or messages; each hook below is a
flag test. On, `configure()` (called once per process by its entry point) builds the SDK
from the standard OTEL_* variables (sampler, resource, exporter, batch processor), exports
OTLP over HTTP/protobuf and instruments asyncpg; the aiohttp client is traced per session
(`http_client_trace_configs`), the servers by their observing middleware
(payout_core.http_observability, with server_span below). Messaging and batch spans are ours
(docs/observability.md says why and what each span is).

The trace of a payout: the API's request span; the relay's publish span, a child of that
request (its context is stored in the outbox row); the processor's process span, a child of
the publish (the context travels in the AMQP headers), with the provider calls under it; a
retry publishes from the process span, so later attempts stay in the trace. Statements that
serve several payouts at once (the relay's batch, the processor's batched status changes)
are spans of their own, linked both ways to the payouts they served.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer

SERVICE_API = "payout-api"
SERVICE_PROCESSOR = "payout-processor"
SERVICE_PROVIDER_SIM = "payout-provider-sim"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
# What W3C Trace Context puts in a carrier: copied between outbox rows and AMQP headers.
CONTEXT_HEADERS = (TRACEPARENT, TRACESTATE)
ATTR_PAYOUT_ID = "payout.id"
MESSAGING_SYSTEM = "rabbitmq"
DEFAULT_EXCHANGE = "amq.default"
# Defaults for variables the instrumentations read, unless the environment sets them: the
# stable HTTP and database conventions.
INSTRUMENTATION_DEFAULTS = {"OTEL_SEMCONV_STABILITY_OPT_IN": "http,database"}
_NO_OP = trace.NoOpTracer()
# How a database client span says what it is (stable and older conventions).
DB_SYSTEM_KEYS = frozenset({"db.system.name", "db.system"})


class _State:
    def __init__(self) -> None:
        self.provider: Any = None  # the SDK's TracerProvider while tracing is on
        self.tracer: Tracer = _NO_OP
        self.instrumentors: list[Any] = []
        self.client_trace_configs: list[Any] = []


_state = _State()


def exporting_configured(env: Mapping[str, str] | None = None) -> bool:
    """True when the environment asks for traces: an OTLP endpoint, the SDK not disabled,
    and no OTEL_TRACES_EXPORTER=none."""
    env = os.environ if env is None else env
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    exporter = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    return bool(endpoint) and not disabled and exporter != "none"


def configure(default_service_name: str) -> bool:
    """Turn tracing on for this process if the environment asks for it (see the module
    docstring); True when it did. Call once, from the entry point, after any fork."""
    if not exporting_configured():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = new_provider(default_service_name)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    install(provider)
    return True


def new_provider(default_service_name: str) -> Any:
    """An SDK TracerProvider: sampler from OTEL_TRACES_SAMPLER(_ARG), resource from
    OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, else service.name=default_service_name."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: default_service_name}))
    provider = TracerProvider(resource=resource)
    # The sampler it read from the environment, behind our filter (before any tracer exists).
    provider.sampler = _without_orphan_statements(provider.sampler)
    return provider


def _without_orphan_statements(sampler: Any) -> Any:
    """`sampler`, except that a database statement outside any span is not traced: the
    relay's poll, the reconciler's and housekeeping's passes, the gauges' counts would each
    be a trace of one statement every second or so. In a span (a request, a message, a
    batch, a reconciler's publish) statements are traced as the sampler decides."""
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class WithoutOrphanStatements(Sampler):
        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: Any = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> Any:
            orphan = not trace.get_current_span(parent_context).get_span_context().is_valid
            if orphan and attributes and DB_SYSTEM_KEYS & attributes.keys():
                return SamplingResult(Decision.DROP)
            return sampler.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"WithoutOrphanStatements{{{sampler.get_description()}}}"

    return WithoutOrphanStatements()


def install(provider: Any) -> None:
    """Trace this process into `provider` (the SDK's): instrument asyncpg; the servers'
    middleware (trace_requests) and the clients' trace configs follow from here on. Tests
    install one with an in-memory exporter."""
    from opentelemetry.instrumentation.aiohttp_client import create_trace_config

    shutdown()
    for name, value in INSTRUMENTATION_DEFAULTS.items():
        os.environ.setdefault(name, value)
    instrumentors = [_statements_in_recorded_spans()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=provider)
    _state.provider = provider
    _state.tracer = provider.get_tracer("payout_core.tracing")
    _state.instrumentors = instrumentors
    _state.client_trace_configs = [
        create_trace_config(tracer_provider=provider, sem_conv_opt_in_mode=_stable_http())
    ]


def _statements_in_recorded_spans() -> Any:
    """asyncpg's instrumentation, for statements inside a span being recorded only. It
    collects a statement's attributes before the sampler is asked, so every statement of
    an unsampled request paid for a span that was then dropped. Outside a recorded span a
    statement runs untouched: under a parent-based sampler (the recommended one) its span
    would be dropped anyway, and statements outside any span are not traced
    (_without_orphan_statements)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    def in_recorded_span(execute: Any) -> Any:
        async def run(self: Any, func: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            if not trace.get_current_span().is_recording():
                return await func(*args, **kwargs)
            return await execute(self, func, instance, args, kwargs)

        return run

    class StatementsInRecordedSpans(AsyncPGInstrumentor):
        _do_execute = in_recorded_span(AsyncPGInstrumentor._do_execute)
        _do_cursor_execute = in_recorded_span(AsyncPGInstrumentor._do_cursor_execute)
        _do_prepared_execute = in_recorded_span(AsyncPGInstrumentor._do_prepared_execute)

    return StatementsInRecordedSpans()  # type: ignore[no-untyped-call]


def _stable_http() -> Any:
    # The client's trace config takes the mode as an argument (the instrumentor would read
    # OTEL_SEMCONV_STABILITY_OPT_IN, but it patches every ClientSession of the process).
    from opentelemetry.instrumentation._semconv import _StabilityMode

    return _StabilityMode.HTTP


def shutdown() -> None:
    """Export what is buffered and turn tracing off (at process exit; between tests)."""
    provider = _state.provider
    for instrumentor in _state.instrumentors:
        instrumentor.uninstrument()
    _state.provider, _state.tracer = None, _NO_OP
    _state.instrumentors, _state.client_trace_configs = [], []
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    return _state.provider is not None


def http_client_trace_configs() -> list[Any]:
    """For aiohttp.ClientSession(trace_configs=...): a client span per request and its
    `traceparent` header; empty while tracing is off."""
    return list(_state.client_trace_configs)


def context_headers() -> dict[str, str]:
    """The current trace context as W3C headers (traceparent, tracestate); {} when off."""
    carrier: dict[str, str] = {}
    if enabled():
        propagate.inject(carrier)
    return carrier


def context_from(headers: Mapping[str, Any] | None) -> Context | None:
    """The trace context carried in headers (an outbox row's, a message's), else None."""
    if not headers or TRACEPARENT not in headers:
        return None
    return propagate.extract({k: _text(headers[k]) for k in CONTEXT_HEADERS if k in headers})


def _text(value: Any) -> str:
    # AMQP header values may arrive as bytes (a longstr that is not UTF-8 stays bytes).
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    context: Context | None = None,
) -> Iterator[Span]:
    """A span, current inside; an exception leaving it is recorded and marks it an error."""
    with _state.tracer.start_as_current_span(
        name, context=context, kind=kind, attributes=attributes
    ) as current:
        yield current


def annotate_payout(payout_id: object) -> None:
    """The payout id on the current span (the HTTP request's, the message's)."""
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attribute(ATTR_PAYOUT_ID, str(payout_id))


def record_error(error: BaseException) -> None:
    """An error handled inside the current span (turned into a response, a retry)."""
    current = trace.get_current_span()
    if current.is_recording():
        current.record_exception(error)
        current.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}"))


# --- HTTP server: a span per request, by the HTTP conventions ------------------------------


@contextmanager
def server_span(
    name: str, headers: Mapping[str, str], attributes: Mapping[str, Any]
) -> Iterator[Span]:
    """A request's SERVER span, current inside, in the caller's trace when its headers carry
    one (W3C Trace Context). The sampler decides from `name` and `attributes`; costlier
    attributes belong only on a span that is_recording(). The answer sets its status
    (end_server_span): an exception leaving it is no error by itself (a 404 raised is an
    answer)."""
    with _state.tracer.start_as_current_span(
        name,
        context=propagate.extract(headers),
        kind=SpanKind.SERVER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        yield current


def end_server_span(span: Span, status: int) -> None:
    """The answer's status code; a 5xx marks the span an error."""
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_attribute("error.type", str(status))
        span.set_status(Status(StatusCode.ERROR))


# --- messaging (RabbitMQ): publish and process spans by the messaging conventions ---------


def messaging_attributes(
    operation: str, destination: str, routing_key: str, message_id: str | None
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "send" if operation == "publish" else operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": destination or DEFAULT_EXCHANGE,
        "messaging.rabbitmq.destination.routing_key": routing_key,
    }
    if message_id:
        attributes["messaging.message.id"] = message_id
    return attributes


def start_publish(
    exchange: str,
    routing_key: str,
    message_id: str,
    *,
    parent: Context | None = None,
    payout_id: object = None,
) -> tuple[Span | None, dict[str, str]]:
    """A PRODUCER span for one message, and the headers that carry it; (None, {}) when off.
    Its parent is `parent` (the trace the message belongs to), linked to the current span
    (the work that publishes it); without a parent, the current span. The caller ends it
    when the broker has confirmed the message (`end_all`)."""
    if not enabled():
        return None, {}
    destination = exchange or DEFAULT_EXCHANGE
    attributes = messaging_attributes("publish", destination, routing_key, message_id)
    if payout_id is not None:
        attributes[ATTR_PAYOUT_ID] = str(payout_id)
    current = trace.get_current_span().get_span_context()
    links = [Link(current)] if parent is not None and current.is_valid else None
    started = _state.tracer.start_span(
        f"publish {destination}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes=attributes,
        links=links,
    )
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(started))
    return started, carrier


@contextmanager
def process_span(
    queue: str, routing_key: str, message_id: str | None, headers: Mapping[str, Any] | None
) -> Iterator[Span | None]:
    """The CONSUMER span of handling one delivered message, a child of its publish span
    (the context in its headers). Deliveries are pushed (basic.consume): by the messaging
    conventions that is a process span, with no receive span before it."""
    if not enabled():
        yield None
        return
    attributes = messaging_attributes("process", queue, routing_key, message_id)
    with span(
        f"process {queue}",
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        context=context_from(headers),
    ) as current:
        yield current


def end_all(spans: Sequence[Span | None], error: BaseException | None = None) -> None:
    for started in spans:
        if started is None:
            continue
        if error is not None:
            started.record_exception(error)
            started.set_status(Status(StatusCode.ERROR, type(error).__name__))
        started.end()


@contextmanager
def ending(spans: Sequence[Span | None]) -> Iterator[None]:
    """Ends the spans when the block (a publish they describe) ends, with its error if any."""
    try:
        yield
    except BaseException as exc:
        end_all(spans, exc)
        raise
    end_all(spans)


# --- batches: one statement serving several payouts, linked both ways ----------------------


def caller_span() -> Span | None:
    """The span of whoever hands work to a batch (None when off or outside a trace)."""
    if not enabled():
        return None
    current = trace.get_current_span()
    return current if current.get_span_context().is_valid else None


@contextmanager
def batch_span(
    name: str,
    served: Sequence[Span | Context | None],
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span | None]:
    """A root span for one piece of work serving several payouts: linked to each payout's
    span (a live one, or a context stored with the payout), and each live recording span
    linked back to it. Current inside, so its statements nest under it."""
    if not enabled():
        yield None
        return
    live = [s for s in served if isinstance(s, Span)]
    contexts = [
        (s if isinstance(s, Span) else trace.get_current_span(s)).get_span_context()
        for s in served
        if s is not None
    ]
    with _state.tracer.start_as_current_span(
        name,
        context=Context(),  # a root: the batch is nobody's child, what it serves is linked
        links=[Link(c) for c in contexts if c.is_valid],
        attributes={**(attributes or {}), "payout.batch_size": len(served)},
    ) as started:
        for span_served in live:
            if span_served.is_recording():
                span_served.add_link(started.get_span_context())
        yield started


def add_trace_ids(_logger: object, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: trace_id and span_id of the current span, when there is one."""
    if _state.provider is None:
        return event_dict
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict

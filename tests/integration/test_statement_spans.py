"""Database statements are traced inside a span being recorded, and cost nothing more outside
one (payout_core.tracing._statements_in_recorded_spans): asyncpg's instrumentation gathers a
statement's attributes before the sampler is asked, so it is not entered at all for a
statement whose span the sampler would drop."""

from __future__ import annotations

import asyncpg
from opentelemetry.instrumentation import asyncpg as asyncpg_instrumentation
from opentelemetry.trace import SpanKind

from payout_core import tracing
from payout_core.db.dsn import connect_url
from tests.support.traces import in_memory_tracing


async def test_statements_are_traced_only_inside_a_recorded_span(settings, monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")  # every new trace dropped
    described = []
    original = asyncpg_instrumentation._hydrate_span_from_args

    def describe(connection, query, *args, **kwargs):
        described.append(query)
        return original(connection, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg_instrumentation, "_hydrate_span_from_args", describe)
    with in_memory_tracing() as exporter:
        conn = await asyncpg.connect(connect_url(settings.database_url))
        try:
            await conn.fetchval("SELECT 'outside any span'")
            with tracing.span("dropped request"):
                await conn.fetchval("SELECT 'in a dropped span'")
            # Recorded: a caller's sampled trace, followed by the parent-based sampler.
            sampled = tracing.context_from(
                {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
            )
            with tracing.span("recorded request", context=sampled) as recorded:
                await conn.fetchval("SELECT 'in a recorded span'")
                await (await conn.prepare("SELECT 'prepared, recorded'")).fetchval()
        finally:
            await conn.close()
        spans = exporter.get_finished_spans()
    assert "dropped request" not in [s.name for s in spans]
    assert described == ["SELECT 'in a recorded span'", "SELECT 'prepared, recorded'"]
    statements = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert [s.attributes["db.query.text"] for s in statements] == described
    parent_id = recorded.get_span_context().span_id
    assert all(s.parent.span_id == parent_id for s in statements)

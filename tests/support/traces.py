"""Tracing into the SDK's in-memory exporter, for tests that assert on spans."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from payout_core import tracing


@contextmanager
def in_memory_tracing() -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process (as `configure` turns it on), every span exported at its
    end to the exporter yielded; off again afterwards."""
    exporter = InMemorySpanExporter()
    provider = tracing.new_provider("payout-tests")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.shutdown()

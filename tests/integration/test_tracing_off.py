"""Tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT, the default): a client's traceparent is not
stored or passed on (neither with the payout's outbox row nor with its webhook events'), and
the hooks make no span."""

from __future__ import annotations

import json
import uuid

from opentelemetry import trace

from payout_core import tracing
from payout_core.db import status_trace
from tests.support.load import payout_body
from tests.support.payout_checks import fetch


async def test_off_nothing_is_stored_with_the_outbox_row(api, auth, settings):
    assert not tracing.enabled()
    request_id = uuid.uuid4().hex
    created = await api.post(
        "/api/payouts/",
        json=payout_body(),
        headers={
            **auth,
            "X-Request-ID": request_id,
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        },
    )
    assert created.status == 201
    rows = await fetch(
        settings.database_url,
        f"SELECT headers FROM outbox WHERE headers->>'x-request-id' = '{request_id}'",
    )
    assert [set(json.loads(row["headers"])) for row in rows] == [{"x-request-id"}]


async def test_off_webhook_events_carry_no_trace_context(api, auth, settings):
    assert not tracing.enabled()
    added = await api.post(
        "/api/webhook-endpoints/",
        json={"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]},
        headers=auth,
    )
    assert added.status == 201
    created = await api.post(
        "/api/payouts/",
        json=payout_body(),
        headers={**auth, "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    )
    assert created.status == 201
    payout_id = (await created.json())["id"]
    cancelled = await api.patch(
        f"/api/payouts/{payout_id}", json={"status": "cancelled"}, headers=auth
    )
    assert cancelled.status == 200
    rows = await fetch(
        settings.database_url,
        "SELECT o.headers FROM outbox o JOIN webhook_events e"
        f" ON e.id = (o.payload->>'event_id')::uuid WHERE e.payout_id = '{payout_id}'",
    )
    assert [json.loads(row["headers"]) for row in rows] == [{}, {}]  # created, cancelled
    assert status_trace.setting_value({uuid.UUID(payout_id): tracing.context_headers()}) is None


def test_off_the_hooks_make_no_span():
    assert not tracing.enabled()
    assert tracing.start_publish("payouts", "payout.created", "m") == (None, {})
    assert tracing.context_headers() == {}
    assert tracing.http_client_trace_configs() == []
    with tracing.span("anything") as span, tracing.batch_span("batch", [span]) as batch:
        assert not span.is_recording() and batch is None
        assert trace.get_current_span().get_span_context().is_valid is False

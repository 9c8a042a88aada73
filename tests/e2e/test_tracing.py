"""Tracing across real processes (issue 16): the API, the processor and the simulated
provider export OTLP over HTTP/protobuf to a receiver in the test, which decodes the payloads
with opentelemetry-proto; one payout's trace arrives from every process, and their log lines
carry the trace id; its webhook delivery continues that trace up to the receiver."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from payout_core.tracing import SERVICE_API, SERVICE_PROCESSOR, SERVICE_PROVIDER_SIM
from tests.e2e.conftest import BOOTSTRAP_KEY, Stack
from tests.e2e.traffic import wait_terminal
from tests.support.infra import Infra
from tests.support.load import payout_body
from tests.support.otlp_receiver import PROTOBUF, Receiver, otlp_receiver
from tests.support.polling import eventually
from tests.support.webhook_receiver import Receiver as WebhookReceiver

pytestmark = pytest.mark.e2e
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN_ID = "b7ad6b7169203331"
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # opentelemetry.proto Span.SpanKind


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with otlp_receiver() as receiver:
        yield receiver


def _otel_env(receiver: Receiver) -> dict[str, str]:
    # Only the endpoint (the rest default): service names come from the code's defaults.
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}


@pytest.fixture
def stack_env(fresh_infra: Infra, receiver: Receiver) -> dict[str, str]:
    return fresh_infra.env(
        API_BOOTSTRAP_KEY=BOOTSTRAP_KEY, LOG_FORMAT="json", **_otel_env(receiver)
    )


async def test_one_payouts_trace_arrives_from_every_process(stack: Stack, receiver: Receiver):
    stack.restart_provider(**_otel_env(receiver))  # the fixture starts it without the variables
    request_id = uuid.uuid4().hex
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{stack.api.url}/api/payouts/",
            json=payout_body(),
            headers={
                **stack.auth,
                "X-Request-ID": request_id,
                "traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01",
            },
        ) as resp:
            assert resp.status == 201, await resp.text()
            payout_id = (await resp.json())["id"]
        assert await wait_terminal(session, stack, payout_id) == "processed"

    wanted = {
        (SERVICE_API, "POST /api/payouts/"),
        (SERVICE_API, "publish payouts"),
        (SERVICE_PROCESSOR, "process payouts.process"),
        (SERVICE_PROCESSOR, "provider transfer"),
        (SERVICE_PROVIDER_SIM, "POST /v1/transfers"),
    }

    async def arrived() -> bool:
        return wanted <= {(s.service, s.name) for s in receiver.spans if s.trace_id == TRACE_ID}

    await eventually(arrived, timeout=20, what="the payout's spans from every process")
    assert receiver.content_types == {PROTOBUF}
    spans = [s for s in receiver.spans if s.trace_id == TRACE_ID]
    by_id = {s.span_id: s for s in spans}

    def one(service: str, name: str, kind: int):
        found = [s for s in spans if (s.service, s.name, s.kind) == (service, name, kind)]
        assert len(found) == 1, (service, name, [(s.service, s.name) for s in spans])
        return found[0]

    server = one(SERVICE_API, "POST /api/payouts/", SERVER)
    assert server.parent_span_id == CLIENT_SPAN_ID
    assert server.attributes["payout.id"] == payout_id
    publish = one(SERVICE_API, "publish payouts", PRODUCER)
    assert publish.parent_span_id == server.span_id
    process = one(SERVICE_PROCESSOR, "process payouts.process", CONSUMER)
    assert process.parent_span_id == publish.span_id  # across the broker
    assert process.attributes["messaging.system"] == "rabbitmq"
    transfer = one(SERVICE_PROCESSOR, "provider transfer", 1)
    assert transfer.parent_span_id == process.span_id
    provider_server = one(SERVICE_PROVIDER_SIM, "POST /v1/transfers", SERVER)
    assert by_id[provider_server.parent_span_id].kind == CLIENT  # the processor's HTTP call
    assert by_id[by_id[provider_server.parent_span_id].parent_span_id] == transfer

    # The log lines of the request and of the message carry the trace id (and their span's).
    for name in ("api", "processor"):
        lines = [
            json.loads(line) for line in (stack.log_dir / f"{name}.log").read_text().splitlines()
        ]
        traced = [
            line for line in lines if line.get("request_id") == request_id and "trace_id" in line
        ]
        assert traced, f"no {name} line of the request carries a trace id"
        assert {line["trace_id"] for line in traced} == {TRACE_ID}
        assert all(len(line["span_id"]) == 16 for line in traced)


async def test_a_webhook_delivery_continues_the_payouts_trace_to_the_receiver(
    stack: Stack, receiver: Receiver, webhook_receiver: WebhookReceiver
):
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{stack.api.url}/api/webhook-endpoints/",
            json={"url": webhook_receiver.url, "enabled_events": ["payout.processed"]},
            headers=stack.auth,
        ) as resp:
            assert resp.status == 201, await resp.text()
        async with session.post(
            f"{stack.api.url}/api/payouts/",
            json=payout_body(),
            headers={**stack.auth, "traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"},
        ) as resp:
            assert resp.status == 201, await resp.text()
            payout_id = (await resp.json())["id"]
        assert await wait_terminal(session, stack, payout_id) == "processed"

    def in_trace() -> list:
        return [s for s in receiver.spans if s.trace_id == TRACE_ID]

    def delivery_and_cause() -> tuple | None:
        """The delivery span and, up its ancestors, the processor's process span of the
        payout, which changed its status (spans arrive from three processes in any order)."""
        spans = in_trace()
        by_id = {s.span_id: s for s in spans}
        for delivery in (s for s in spans if s.name == "webhook delivery"):
            span = delivery
            while span.parent_span_id in by_id:
                span = by_id[span.parent_span_id]
                if span.name == "process payouts.process":
                    return delivery, span
        return None

    async def arrived() -> tuple | None:
        return delivery_and_cause() if webhook_receiver.received else None

    delivery, cause = await eventually(
        arrived, timeout=20, what="the webhook delivery's span below the payout's processing"
    )
    spans = in_trace()
    assert [s.name for s in spans].count("webhook delivery") == 1
    assert delivery.service == SERVICE_PROCESSOR
    assert delivery.attributes["payout.id"] == payout_id
    assert delivery.attributes["webhook.event.type"] == "payout.processed"
    assert cause.service == SERVICE_PROCESSOR and cause.attributes["payout.id"] == payout_id
    (post,) = [s for s in spans if s.parent_span_id == delivery.span_id and s.kind == CLIENT]
    assert post.attributes["http.request.method"] == "POST"
    (received,) = webhook_receiver.received
    assert received.headers["traceparent"] == f"00-{TRACE_ID}-{post.span_id}-01"

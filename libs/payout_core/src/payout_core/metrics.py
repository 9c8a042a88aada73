"""Prometheus metrics, one registry per process (built in bootstrap, never at import time).

Names are a public contract: dashboards, alert rules and docs/observability.md rely on them.
Each process exposes only its own metrics: ApiMetrics in the API, ProcessorMetrics in the
processor, both on top of the ServiceMetrics they share.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from payout_core.messaging.contracts import QUEUE_DEAD, QUEUE_PROCESS

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
E2E_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
MESSAGE_OUTCOMES = (
    "processed",
    "failed",
    "skipped_duplicate",
    "retried",
    "dead_lettered",
    "malformed",
    "deferred",
    "flagged",
)
WEBHOOK_OUTCOMES = ("succeeded", "failed", "given_up")
DEFERRAL_REASONS = ("in_doubt", "unreachable", "database_unavailable")
RECONCILE_ACTIONS = ("reenqueued", "resolved", "flagged")
HOUSEKEEPING_TABLES = (
    "outbox",
    "idempotency_keys",
    "dead_letters",
    "webhook_events",
    "webhook_attempts",
)
WATCHED_QUEUES = (QUEUE_PROCESS, QUEUE_DEAD)
UNFINISHED_STATES = ("stuck", "in_doubt", "flagged")


class ServiceMetrics:
    """What every process exposes: HTTP requests, status transitions, unfinished payouts,
    process and runtime."""

    def __init__(self) -> None:
        # No `<name>_created` series beside every counter and histogram: nothing here reads
        # them, and they would double what Prometheus stores (process-wide switch).
        disable_created_metrics()
        self.registry = CollectorRegistry()
        r = self.registry
        process_collector.ProcessCollector(registry=r)
        platform_collector.PlatformCollector(registry=r)
        gc_collector.GCCollector(registry=r)

        self.http_requests = Counter(
            "payout_http_requests_total",
            "HTTP requests served.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "payout_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.transitions = Counter(
            "payout_status_transitions_total",
            "Payout status changes.",
            ["from", "to"],
            registry=r,
        )
        # In every process, so its alerts need no processor running (KEDA at zero).
        self.unfinished = Gauge(
            "payout_unfinished",
            "Unfinished payouts needing attention: stuck (no progress past "
            "RECONCILE_STUCK_AFTER_S), in_doubt (a provider call without a definite answer), "
            "flagged (automation gave up on them).",
            ["state"],
            registry=r,
        )
        for state in UNFINISHED_STATES:
            self.unfinished.labels(state=state)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ApiMetrics(ServiceMetrics):
    """The API's own: payouts accepted and the outbox relay."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.created = Counter(
            "payout_created_total", "Payouts accepted (201).", ["currency"], registry=r
        )
        self.outbox_pending = Gauge(
            "payout_outbox_pending", "Outbox rows not yet published.", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "payout_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox row.",
            registry=r,
        )
        self.publish_failures = Counter(
            "payout_publish_failures_total", "Outbox batches that failed to publish.", registry=r
        )
        self.published = Counter(
            "payout_published_total", "Outbox messages published and confirmed.", registry=r
        )


class ProcessorMetrics(ServiceMetrics):
    """The processor's own: messages by outcome, latencies, in-flight work, queue gauges."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.messages = Counter(
            "payout_messages_total", "Messages handled by the processor.", ["outcome"], registry=r
        )
        self.processing_duration = Histogram(
            "payout_processing_duration_seconds",
            "Time to handle one payout message.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end = Histogram(
            "payout_end_to_end_seconds",
            "Time from creation to a terminal status.",
            buckets=E2E_BUCKETS,
            registry=r,
        )
        self.inflight = Gauge(
            "payout_processor_inflight", "Messages being handled right now.", registry=r
        )
        self.queue_depth = Gauge(
            "payout_queue_depth", "Messages ready in a queue.", ["queue"], registry=r
        )
        self.queue_consumers = Gauge(
            "payout_queue_consumers", "Consumers attached to a queue.", ["queue"], registry=r
        )
        # Webhooks (docs/webhooks.md): attempts by outcome (succeeded, failed, given_up), their
        # duration, orders queued or waiting for a retry.
        self.webhook_deliveries = Counter(
            "payout_webhook_deliveries_total",
            "Webhook delivery attempts by outcome.",
            ["outcome"],
            registry=r,
        )
        self.webhook_duration = Histogram(
            "payout_webhook_delivery_duration_seconds",
            "Time of one webhook delivery attempt.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.webhook_pending = Gauge(
            "payout_webhook_pending",
            "Webhook deliveries queued or waiting for a retry.",
            registry=r,
        )
        self.webhook_failing_endpoint_age = Gauge(
            "payout_webhook_failing_endpoint_seconds",
            "How long the longest-failing enabled webhook endpoint has failed every attempt.",
            registry=r,
        )
        self.deferrals = Counter(
            "payout_deferrals_total",
            "Messages put off by an outage (database away, provider answer in doubt); "
            "no attempt used.",
            ["reason"],
            registry=r,
        )
        self.reconciled = Counter(
            "payout_reconciled_total",
            "Stuck payouts the reconciler re-enqueued, resolved by a provider lookup, or flagged.",
            ["action"],
            registry=r,
        )
        self.housekeeping_deleted = Counter(
            "payout_housekeeping_deleted_total",
            "Rows (and dead letters) pruned by housekeeping.",
            ["table"],
            registry=r,
        )
        self.housekeeping_runs = Counter(
            "payout_housekeeping_runs_total",
            "Housekeeping passes, by result (ran, skipped: another runner held the lock, failed).",
            ["result"],
            registry=r,
        )
        # Every outcome and queue at 0 from the start, so rate() and alerts work before the
        # first event.
        for outcome in MESSAGE_OUTCOMES:
            self.messages.labels(outcome=outcome)
        for outcome in WEBHOOK_OUTCOMES:
            self.webhook_deliveries.labels(outcome=outcome)
        for reason in DEFERRAL_REASONS:
            self.deferrals.labels(reason=reason)
        for action in RECONCILE_ACTIONS:
            self.reconciled.labels(action=action)
        for table in HOUSEKEEPING_TABLES:
            self.housekeeping_deleted.labels(table=table)
        for result in ("ran", "skipped", "failed"):
            self.housekeeping_runs.labels(result=result)
        for queue in WATCHED_QUEUES:
            self.queue_depth.labels(queue=queue)
            self.queue_consumers.labels(queue=queue)

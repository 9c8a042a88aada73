"""The webhook endpoints and events operations of the OpenAPI document (document.py adds them
beside the payouts')."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema

from payout_api.webhooks import schemas as s

TAG = "webhooks"
TAG_DESCRIPTION = (
    "Webhook endpoints and the events they receive (docs/webhooks.md). Each payout status "
    "change is an event, `payout.created`, `payout.processing`, `payout.processed`, "
    "`payout.failed` or `payout.cancelled`, written with the change; its body (the `Event` "
    "schema) is POSTed to every enabled endpoint that wants its type, signed to the Standard "
    "Webhooks specification (`webhook-id`, `webhook-timestamp`, `webhook-signature`), at least "
    "once. Ordering is not guaranteed: order by `created_at` and the payout's `version`."
)
SCHEMAS: dict[str, type[Schema]] = {
    "WebhookEndpoint": s.EndpointSchema,
    "WebhookEndpointCreated": s.EndpointCreatedSchema,
    "WebhookEndpointCreate": s.EndpointCreateSchema,
    "WebhookEndpointUpdate": s.EndpointUpdateSchema,
    "WebhookEndpointPage": s.EndpointPageSchema,
    "Event": s.EventSchema,
    "EventPage": s.EventPageSchema,
    "WebhookAttemptList": s.AttemptListSchema,
    "RotatedSecret": s.RotatedSecretSchema,
    "RedeliveryAccepted": s.RedeliveryAcceptedSchema,
}
BODY_PROBLEMS = (
    "invalid-json",
    "duplicate-key",
    "payload-too-large",
    "unsupported-media-type",
    "validation-error",
)
ENDPOINT_ID = {
    "in": "path",
    "name": "id",
    "required": True,
    "description": "The webhook endpoint's id.",
    "schema": {"type": "string", "format": "uuid"},
}
EVENT_ID = {
    "in": "path",
    "name": "id",
    "required": True,
    "description": "The event's id (`evt_…`).",
    "schema": {"type": "string"},
}

Operation = Callable[..., dict[str, Any]]


def webhook_paths(operation: Operation, write_problems: tuple[str, ...]) -> dict[str, Any]:
    """`operation` builds an operation that needs a key (as the payouts' do)."""

    def op(
        summary: str,
        description: str,
        status: str,
        schema: type[Schema] | None,
        problems: tuple[str, ...],
        operation_id: str,
        **extra: Any,
    ) -> dict[str, Any]:
        response: dict[str, Any] = {"description": summary}
        if schema is not None:
            response["content"] = {"application/json": {"schema": schema}}
        built = operation(
            summary, description, {status: response}, problems, operationId=operation_id, **extra
        )
        built["tags"] = [TAG]
        return built

    def body(schema: type[Schema]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    writes = (*BODY_PROBLEMS, *write_problems)
    return {
        "/api/webhook-endpoints/": {
            "get": op(
                "List webhook endpoints",
                "Your endpoints, newest first; paged like payouts.",
                "200",
                s.EndpointPageSchema,
                ("invalid-parameter",),
                "listWebhookEndpoints",
                query=s.EndpointListQuerySchema,
            ),
            "post": op(
                "Create a webhook endpoint",
                "The URL must be https and resolve to public addresses only. The response holds "
                "the signing `secret`, shown only here.",
                "201",
                s.EndpointCreatedSchema,
                writes,
                "createWebhookEndpoint",
                requestBody=body(s.EndpointCreateSchema),
            ),
        },
        "/api/webhook-endpoints/{id}/": {
            "parameters": [ENDPOINT_ID],
            "get": op(
                "Get a webhook endpoint",
                "The endpoint (without its secret).",
                "200",
                s.EndpointSchema,
                ("not-found",),
                "getWebhookEndpoint",
            ),
            "patch": op(
                "Change a webhook endpoint",
                "Change its `url`, `enabled_events`, `description`, or `status` (enable it again "
                "after it was disabled for failing).",
                "200",
                s.EndpointSchema,
                ("not-found", *writes),
                "updateWebhookEndpoint",
                requestBody=body(s.EndpointUpdateSchema),
            ),
            "delete": op(
                "Delete a webhook endpoint",
                "Deliveries to it stop; its attempts are deleted with it.",
                "204",
                None,
                ("not-found", *write_problems),
                "deleteWebhookEndpoint",
            ),
        },
        "/api/webhook-endpoints/{id}/rotate-secret/": {
            "parameters": [ENDPOINT_ID],
            "post": op(
                "Rotate the signing secret",
                "A new secret; the previous one keeps signing beside it (two `v1,` signatures) "
                "until `previous_secret_expires_at` (WEBHOOK_SECRET_OVERLAP_S).",
                "200",
                s.RotatedSecretSchema,
                ("not-found", *write_problems),
                "rotateWebhookSecret",
            ),
        },
        "/api/webhook-endpoints/{id}/deliveries/": {
            "parameters": [ENDPOINT_ID],
            "get": op(
                "Delivery attempts",
                "The newest 100 attempts to this endpoint: time, response status, duration, error.",
                "200",
                s.AttemptListSchema,
                ("not-found",),
                "listWebhookDeliveries",
            ),
        },
        "/api/events/": {
            "get": op(
                "List events",
                "Your events, newest first (kept 30 days by default); cursor-paged like payouts.",
                "200",
                s.EventPageSchema,
                ("invalid-parameter",),
                "listEvents",
                query=s.EventListQuerySchema,
            ),
        },
        "/api/events/{id}/": {
            "parameters": [EVENT_ID],
            "get": op(
                "Get an event",
                "The event as it was delivered.",
                "200",
                s.EventSchema,
                ("not-found",),
                "getEvent",
            ),
        },
        "/api/events/{id}/redeliver/": {
            "parameters": [EVENT_ID],
            "post": op(
                "Deliver an event again",
                "To every enabled endpoint that wants its type, or only to `endpoint_id`. "
                "Queued: delivered shortly, with the same `webhook-id`.",
                "202",
                s.RedeliveryAcceptedSchema,
                ("not-found", "invalid-parameter", *write_problems),
                "redeliverEvent",
                query=s.RedeliverQuerySchema,
            ),
        },
    }

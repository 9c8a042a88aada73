"""What the webhook endpoints and events API accepts (marshmallow; also the OpenAPI source)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from payout_api.schemas import ListQuerySchema, PayoutSchema
from payout_core.webhooks.events import ALL_EVENTS, EVENT_TYPES
from payout_core.webhooks.urls import MAX_URL_LENGTH

ENDPOINT_STATUSES = ("enabled", "disabled")
_PAGING = ListQuerySchema._declared_fields


def _url(required: bool) -> fields.String:
    return fields.String(
        required=required,
        validate=validate.Length(min=1, max=MAX_URL_LENGTH),
        metadata={
            "description": "Where events are POSTed: https, resolving to public addresses only.",
            "example": "https://example.com/webhooks/payouts",
        },
    )


def _enabled_events(required: bool) -> fields.List[str]:
    return fields.List(
        fields.String(validate=validate.OneOf((*EVENT_TYPES, ALL_EVENTS))),
        required=required,
        validate=validate.Length(min=1, max=len(EVENT_TYPES) + 1),
        metadata={
            "description": 'Event types sent to this endpoint; `["*"]` for all.',
            "example": ["payout.processed", "payout.failed"],
        },
    )


def _description() -> fields.String:
    return fields.String(
        validate=validate.Length(max=500),
        metadata={"description": "Your note about the endpoint.", "example": "ERP sync"},
    )


class EndpointCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    url = _url(required=True)
    enabled_events = _enabled_events(required=True)
    description = _description()


class EndpointUpdateSchema(Schema):
    class Meta:
        unknown = RAISE

    url = _url(required=False)
    enabled_events = _enabled_events(required=False)
    description = _description()
    status = fields.String(
        validate=validate.OneOf(ENDPOINT_STATUSES),
        metadata={"description": "`enabled` again after it was disabled, or `disabled`."},
    )


class EndpointListQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    limit = _PAGING["limit"]
    cursor = _PAGING["cursor"]


class EventListQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    limit = _PAGING["limit"]
    cursor = _PAGING["cursor"]
    type = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        metadata={"description": "Only these types; repeat it for several."},
    )
    payout_id = fields.UUID(metadata={"description": "Only the events of this payout."})
    created_after = _PAGING["created_after"]
    created_before = _PAGING["created_before"]


class RedeliverQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    endpoint_id = fields.UUID(
        metadata={"description": "Only to this endpoint (else every matching enabled one)."}
    )


# --- responses (documentation only: the handlers render with representation.py) ----------


class EndpointSchema(Schema):
    """A webhook endpoint as the API returns it (the secret only on creation)."""

    id = fields.UUID(required=True)
    url = fields.String(required=True)
    description = fields.String(required=True)
    enabled_events = fields.List(fields.String(), required=True)
    status = fields.String(required=True, validate=validate.OneOf(ENDPOINT_STATUSES))
    disabled_reason = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "`failing` (every attempt failed too long) or `by_client`."},
    )
    failing_since = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "Since when every attempt has failed; null when healthy."},
    )
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class EndpointCreatedSchema(EndpointSchema):
    secret = fields.String(
        required=True,
        metadata={
            "description": "The signing secret (`whsec_` + base64), shown only in this response.",
            "example": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        },
    )


class EndpointPageSchema(Schema):
    results = fields.List(fields.Nested(EndpointSchema), required=True)
    next = fields.String(required=True, allow_none=True)
    previous = fields.String(required=True, allow_none=True)


class EventDataSchema(Schema):
    object = fields.Nested(
        PayoutSchema,
        required=True,
        metadata={"description": "The payout exactly as GET /api/payouts/{id}/ returned it."},
    )


class EventSchema(Schema):
    """An event: what a webhook delivers (the body) and GET /api/events/{id}/ returns."""

    id = fields.String(required=True, metadata={"example": "evt_0b8f5c4e2f1a4c599a511f2e3d4c5b6a"})
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    created_at = fields.DateTime(required=True)
    data = fields.Nested(EventDataSchema, required=True)


class EventPageSchema(Schema):
    results = fields.List(fields.Nested(EventSchema), required=True)
    next = fields.String(required=True, allow_none=True)
    previous = fields.String(required=True, allow_none=True)


class AttemptSchema(Schema):
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    attempt = fields.Integer(required=True, metadata={"description": "1 for the first try."})
    at = fields.DateTime(required=True)
    succeeded = fields.Boolean(required=True)
    response_status = fields.Integer(required=True, allow_none=True)
    duration_ms = fields.Integer(required=True)
    error = fields.String(required=True, allow_none=True)


class AttemptListSchema(Schema):
    results = fields.List(
        fields.Nested(AttemptSchema),
        required=True,
        metadata={"description": "The newest 100 attempts, newest first."},
    )


class RotatedSecretSchema(Schema):
    secret = fields.String(required=True, metadata={"description": "The new signing secret."})
    previous_secret_expires_at = fields.DateTime(
        required=True, metadata={"description": "Until then the previous secret signs too."}
    )
    endpoint = fields.Nested(EndpointSchema, required=True)


class RedeliveryAcceptedSchema(Schema):
    event_id = fields.String(required=True)
    endpoint_id = fields.UUID(required=True, allow_none=True)

"""marshmallow schemas: the single definition of what the API accepts and returns.

The same classes validate requests and generate the OpenAPI document; the JSON Schema of their
custom fields (an amount's pattern, the currency codes, ...) is openapi/components.py's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)
from marshmallow.types import StrSequenceOrSet, UnknownOption

from payout_core.domain.bank import account_error, bic_error, normalize_account
from payout_core.domain.currencies import is_active_currency
from payout_core.domain.money import MoneyError, check_amount, parse_amount
from payout_core.domain.status import PayoutStatus
from payout_core.domain.text import text_error

MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LEN = 40
MAX_METADATA_VALUE_LEN = 500
STATUSES = [s.value for s in PayoutStatus]


class Amount(fields.Field[Decimal]):
    """A decimal amount sent as a JSON string or an exact JSON number; returned as a string."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        try:
            return parse_amount(value)
        except MoneyError as exc:
            raise ValidationError(str(exc)) from None

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else str(value)


class Currency(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        code = super()._deserialize(value, attr, data, **kwargs)
        if not is_active_currency(code):
            raise ValidationError("Must be an active ISO 4217 currency code in upper case.")
        return code


class Account(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        raw = super()._deserialize(value, attr, data, **kwargs)
        error = account_error(raw)
        if error:
            raise ValidationError(error)
        return normalize_account(raw)


class Bic(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        raw = super()._deserialize(value, attr, data, **kwargs)
        error = bic_error(raw)
        if error:
            raise ValidationError(error)
        return raw


class FreeText(fields.String):
    """Text people write: no control characters or bidi overrides; a name is never blank."""

    def __init__(self, *, blank_ok: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blank_ok = blank_ok

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        error = text_error(text, blank_ok=self.blank_ok)
        if error:
            raise ValidationError(error)
        return text


class Metadata(fields.Dict):
    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, str]:
        if not isinstance(value, dict):
            raise ValidationError("Must be an object of string keys to string values.")
        errors = []
        if len(value) > MAX_METADATA_KEYS:
            errors.append(f"At most {MAX_METADATA_KEYS} keys.")
        for key, item in value.items():
            if not 1 <= len(key) <= MAX_METADATA_KEY_LEN:
                errors.append(f"Key {key[:50]!r} must be 1 to {MAX_METADATA_KEY_LEN} characters.")
            elif text_error(key):
                errors.append(f"Key {key!r}: {text_error(key)}")
            if not isinstance(item, str):
                errors.append(f"Value of {key[:50]!r} must be a string.")
            elif len(item) > MAX_METADATA_VALUE_LEN:
                errors.append(f"Value of {key[:50]!r} must be at most 500 characters.")
            elif text_error(item):
                errors.append(f"Value of {key[:50]!r}: {text_error(item)}")
        if errors:
            raise ValidationError(errors)
        return dict(value)


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 date-time (naive means UTC), in UTC: far-off offsets that would leave the
    range of a timestamp (year 1 at +01:00) are a validation error, not a database error."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_timezone=UTC, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Out of range.") from None


class RecipientDetailsSchema(Schema):
    class Meta:
        unknown = RAISE

    account = Account(
        required=True,
        metadata={
            "description": "Account number or IBAN; 6-34 letters and digits.",
            "example": "DE89370400440532013000",
        },
    )
    name = FreeText(
        required=True,
        blank_ok=False,
        validate=validate.Length(min=1, max=140),
        metadata={
            "description": "The account holder's name: not blank, no control characters.",
            "example": "Jane Doe",
        },
    )
    bank_code = Bic(
        load_default=None,
        allow_none=True,
        metadata={"description": "BIC (8 or 11 characters).", "example": "COBADEFFXXX"},
    )


class _RequestBody(Schema):
    """A request body: unknown fields are refused, and a field of the payout that the server
    sets (id, status, version, timestamps, ...) gets a clear "Read-only field." beside the
    body's other errors. The server-set fields are not declared here, so the OpenAPI request
    models hold exactly what a client may send."""

    class Meta:
        unknown = RAISE

    def load(
        self,
        data: Any,
        *,
        many: bool | None = None,
        partial: bool | StrSequenceOrSet | None = None,
        unknown: UnknownOption | None = None,
    ) -> Any:
        read_only = {}
        if isinstance(data, dict):
            read_only = {
                k: ["Read-only field."]
                for k in data
                if k in SERVER_SET_FIELDS and k not in self.fields
            }
        if not read_only:
            return super().load(data, many=many, partial=partial, unknown=unknown)
        rest = {k: v for k, v in data.items() if k not in read_only}
        try:
            super().load(rest, many=many, partial=partial, unknown=unknown)
        except ValidationError as exc:
            raise ValidationError({**exc.messages_dict, **read_only}) from None
        raise ValidationError(read_only)


def check_amount_for_currency(data: dict[str, Any]) -> None:
    amount, currency = data.get("amount"), data.get("currency")
    if amount is None or currency is None:
        return
    try:
        check_amount(amount, currency)
    except MoneyError as exc:
        raise ValidationError({"amount": [str(exc)]}) from None


class PayoutCreateSchema(_RequestBody):
    """Body of POST /api/payouts/."""

    amount = Amount(
        required=True,
        metadata={
            "example": "100.50",
            "description": "Decimal amount, a string (or an exact JSON number); "
            "no more decimal places than the currency allows.",
        },
    )
    currency = Currency(
        required=True,
        metadata={
            "example": "USD",
            "description": "Active ISO 4217 code.",
        },
    )
    recipient_details = fields.Nested(RecipientDetailsSchema, required=True)
    description = FreeText(load_default="", validate=validate.Length(max=1000))
    metadata = Metadata(
        load_default=dict,
        metadata={
            "description": "Up to 50 string keys (≤ 40 chars) to string values (≤ 500 chars).",
            "example": {"order_id": "6735"},
        },
    )

    @validates_schema
    def _amount_fits_currency(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_amount_for_currency(data)


class PayoutUpdateSchema(_RequestBody):
    """Body of PATCH /api/payouts/{id}/: any subset of the editable fields, or a status."""

    amount = Amount(metadata={"example": "120.00"})
    currency = Currency()
    recipient_details = fields.Nested(RecipientDetailsSchema)
    description = FreeText(validate=validate.Length(max=1000))
    metadata = Metadata()
    status = fields.String(
        validate=validate.OneOf(STATUSES),
        # Documented as the one value a client may ask for; another status is a 409.
        metadata={
            "description": "Only `cancelled` may be requested, and only while pending.",
            "enum": ["cancelled"],
        },
    )

    @validates_schema
    def _status_alone(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "status" in data and len(data) > 1:
            raise ValidationError(
                {"status": ["Change the status on its own, without other fields."]}
            )


class RecipientDetailsOutSchema(Schema):
    account = fields.String(required=True)
    name = fields.String(required=True)
    bank_code = fields.String(allow_none=True, required=True)


class PayoutSchema(Schema):
    """A payout as the API returns it."""

    id = fields.UUID(required=True)
    amount = fields.String(required=True, metadata={"example": "100.50"})
    currency = fields.String(required=True, metadata={"example": "USD"})
    recipient_details = fields.Nested(RecipientDetailsOutSchema, required=True)
    description = fields.String(required=True)
    metadata = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    failure_code = fields.String(allow_none=True, required=True)
    failure_message = fields.String(allow_none=True, required=True)
    failure_retryable = fields.Boolean(
        allow_none=True,
        required=True,
        metadata={
            "description": "For a failed payout: whether a new payout with the same details "
            "may succeed later (insufficient_funds, provider_declined, processing_error); "
            "false when the details must change. Null unless failed."
        },
    )
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    processed_at = fields.DateTime(allow_none=True, required=True)
    version = fields.Integer(required=True)


# What a payout has that no client sends at creation: readOnly in the document.
SERVER_SET_FIELDS = frozenset(PayoutSchema._declared_fields) - frozenset(
    PayoutCreateSchema._declared_fields
)


class PayoutPageSchema(Schema):
    results = fields.List(fields.Nested(PayoutSchema), required=True)
    next = fields.Url(allow_none=True, required=True, relative=True)
    previous = fields.Url(allow_none=True, required=True, relative=True)


class PayoutEventSchema(Schema):
    from_status = fields.String(allow_none=True, data_key="from", required=True)
    to_status = fields.String(data_key="to", required=True)
    at = fields.DateTime(required=True)
    reason = fields.String(required=True)


class PayoutEventListSchema(Schema):
    results = fields.List(fields.Nested(PayoutEventSchema), required=True)


class ListQuerySchema(Schema):
    """Query parameters of GET /api/payouts/."""

    class Meta:
        unknown = RAISE

    limit = fields.Integer(
        load_default=50,
        validate=validate.Range(min=1, max=200),
        metadata={"description": "Payouts per page.", "example": 20},
    )
    cursor = fields.String(
        validate=validate.Length(min=1),
        metadata={
            "description": "Opaque cursor: take it from `next` or `previous`. Leave the "
            "parameter out for the first page: an empty or altered cursor is a 400."
        },
    )
    status = fields.List(
        fields.String(validate=validate.OneOf(STATUSES)),
        metadata={
            "description": "Only these statuses; repeat it for several: "
            "`status=failed&status=cancelled`.",
            "example": ["failed", "cancelled"],
        },
    )
    currency = Currency(metadata={"description": "Only this currency.", "example": "EUR"})
    created_after = UtcDateTime(
        metadata={
            "description": "Created strictly after this moment (ISO 8601; no offset means UTC).",
            "example": "2025-01-01T00:00:00Z",
        }
    )
    created_before = UtcDateTime(
        metadata={
            "description": "Created strictly before this moment (ISO 8601; no offset means UTC).",
            "example": "2025-02-01T00:00:00Z",
        }
    )
    idempotency_key = fields.String(
        validate=validate.Length(min=1, max=255),
        metadata={
            "description": "The payout created by the POST that sent this Idempotency-Key "
            "(to find it when the response was lost).",
            "example": "order-6735-payout",
        },
    )


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    instance = fields.String(required=True)
    request_id = fields.String(required=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Validation errors by field; nested fields as a.b."},
    )


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error dict as {"recipient_details.account": [...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int) and prefix:  # an item of a list: report the list
                path = prefix
            else:
                name = "body" if key == "_schema" else str(key)
                path = f"{prefix}.{name}" if prefix else name
            if isinstance(value, dict):
                out.update(flatten_errors(value, path))
            else:
                out.setdefault(path, []).extend(_as_strings(value))
    else:
        out.setdefault(prefix or "body", []).extend(_as_strings(messages))
    return out


def _as_strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]

"""What the use cases refuse, in the domain's words. Nothing here knows HTTP: the edge maps
each error to a problem, in one table (payout_api.problems.PROBLEMS)."""

from __future__ import annotations

import uuid


class UseCaseError(Exception):
    """A request the use cases refuse; str() says why, to the client."""


class PayoutNotFound(UseCaseError):
    def __init__(self, payout_id: uuid.UUID) -> None:
        super().__init__(f"No payout {payout_id}.")


class VersionMismatch(UseCaseError):
    """The client changes a version of the payout that is no longer the current one."""

    def __init__(self, current_version: int) -> None:
        super().__init__(f"The payout is at version {current_version}.")
        self.current_version = current_version


class IdempotencyKeyInUse(UseCaseError):
    """A concurrent request holds the same idempotency key: retry shortly."""

    def __init__(
        self,
        reason: str = "Another request with this Idempotency-Key is still in progress; "
        "retry shortly.",
    ) -> None:
        super().__init__(reason)


class IdempotencyKeyReused(UseCaseError):
    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was used with a different request body in the "
            "last 24 hours; use a new key for a new payout."
        )


class InvalidChange(UseCaseError):
    """A change the payout's status does not allow."""


class InvalidPayout(UseCaseError):
    """The payout would not be valid with the requested changes: the reasons by field."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("The payout is not valid with these changes.")
        self.errors = errors


class EndpointNotFound(UseCaseError):
    def __init__(self, endpoint_id: object) -> None:
        super().__init__(f"No webhook endpoint {str(endpoint_id)[:64]!r}.")


class EventNotFound(UseCaseError):
    def __init__(self, event_id: str) -> None:
        super().__init__(f"No event {event_id[:64]!r}.")


class UnsafeWebhookUrl(UseCaseError):
    """The webhook URL is one deliveries may not go to (see payout_core.webhooks.urls)."""

    def __init__(self, why: str) -> None:
        super().__init__(f"url {why}.")
        self.errors = {"url": [f"The URL {why}."]}

"""Payout statuses and the only transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum


class PayoutStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = PayoutStatus
# What a new payout is.
INITIAL = S.PENDING
ALLOWED_TRANSITIONS: frozenset[tuple[PayoutStatus, PayoutStatus]] = frozenset(
    {
        (S.PENDING, S.PROCESSING),
        (S.PENDING, S.CANCELLED),
        (S.PROCESSING, S.PROCESSED),
        (S.PROCESSING, S.FAILED),
    }
)
# The one transition a client may ask for.
CLIENT_REQUESTABLE: frozenset[tuple[PayoutStatus, PayoutStatus]] = frozenset(
    {(S.PENDING, S.CANCELLED)}
)


class IllegalTransition(Exception):
    def __init__(self, current: PayoutStatus, requested: PayoutStatus) -> None:
        super().__init__(f"A {current} payout cannot become {requested}.")
        self.current = current
        self.requested = requested


def can_transition(current: PayoutStatus, target: PayoutStatus) -> bool:
    return (current, target) in ALLOWED_TRANSITIONS


def check_client_transition(current: PayoutStatus, requested: PayoutStatus) -> None:
    if (current, requested) not in CLIENT_REQUESTABLE:
        raise IllegalTransition(current, requested)

"""The test accounts (after Stripe's test bank accounts) and what the provider does for them."""

from __future__ import annotations

from enum import Enum

DECLINING = {
    "000111111116": "no_account",
    "000111111113": "account_closed",
    "000222222227": "insufficient_funds",
}
# Answers 503 to its first TRANSIENT_FAILURES calls per idempotency key, then executes.
TRANSIENT = "000999999991"
TRANSIENT_FAILURES = 2
# Executes, then drops the connection without an answer (every time): only a lookup tells.
LOST_ANSWER = "000333333335"
# Executes after PROVIDER_SIM_SLOW_ANSWER_MS (by default longer than the processor waits).
SLOW = "000444444440"


class Behaviour(Enum):
    NORMAL = "normal"
    DECLINE = "decline"
    TRANSIENT = "transient"
    LOST_ANSWER = "lost_answer"
    SLOW = "slow"


def behaviour(account: str) -> Behaviour:
    if account in DECLINING:
        return Behaviour.DECLINE
    return {
        TRANSIENT: Behaviour.TRANSIENT,
        LOST_ANSWER: Behaviour.LOST_ANSWER,
        SLOW: Behaviour.SLOW,
    }.get(account, Behaviour.NORMAL)

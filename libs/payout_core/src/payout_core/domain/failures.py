"""Failure codes a payout can end with, each with a message people can read."""

FAILURE_MESSAGES: dict[str, str] = {
    "no_account": "The bank could not find an account with these details.",
    "account_closed": "The bank account has been closed.",
    "insufficient_funds": "The payout could not be funded: insufficient funds.",
    "provider_declined": "The payout provider declined the payout.",
    "processing_error": "The payout could not be processed after repeated attempts.",
    "provider_rejected": "The payout provider rejected the payout request.",
}
# Failures a client may retry with a new payout (the same one never runs again): a later
# attempt can succeed. The others need new recipient details.
RETRYABLE: frozenset[str] = frozenset(
    {"insufficient_funds", "provider_declined", "processing_error"}
)


def failure_message(code: str) -> str:
    return FAILURE_MESSAGES.get(code, "The payout failed.")


def is_retryable(code: str | None) -> bool | None:
    """None for a payout that did not fail."""
    return None if code is None else code in RETRYABLE

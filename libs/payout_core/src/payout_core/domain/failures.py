"""Failure codes a payout can end with, each with a message people can read."""

FAILURE_MESSAGES: dict[str, str] = {
    "no_account": "The bank could not find an account with these details.",
    "account_closed": "The bank account has been closed.",
    "insufficient_funds": "The payout could not be funded: insufficient funds.",
    "provider_declined": "The payout provider declined the payout.",
    "processing_error": "The payout could not be processed after repeated attempts.",
}


def failure_message(code: str) -> str:
    return FAILURE_MESSAGES.get(code, "The payout failed.")

"""How many payouts the provider executed more than once: the one place that says how it is
counted, so that it can count a provider service's executions instead of its ledger rows."""

from __future__ import annotations

from tests.support.payout_checks import ledger_problems


async def executed_twice(database_url: str) -> int:
    """Today's simulated provider keeps one ledger row per reference and moves money only on
    the first call that records a result (later calls replay it). A payout paid twice shows as
    a ledger row that disagrees with its payout (money moved for a payout that is not
    processed, at another amount, or for a payout given up on): ledger_problems counts those.
    """
    return len(await ledger_problems(database_url))

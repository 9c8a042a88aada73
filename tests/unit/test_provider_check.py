"""The checker the fault tests rely on counts money at the provider: it must catch a double
execution, a lost payout, a payout reported differently from what the provider did, and (with
the history check) an illegal transition."""

from __future__ import annotations

from decimal import Decimal

from tests.support.payout_checks import Payout, Transfer, history_violations, provider_violations

TEN = Decimal("10.0000")


def executed(reference: str = "a", amount: Decimal = TEN) -> Transfer:
    return Transfer(reference, "executed", None, amount)


def declined(code: str, reference: str = "a") -> Transfer:
    return Transfer(reference, "declined", code, TEN)


def test_processed_once_and_declined_as_reported_pass():
    payouts = {
        "a": Payout("processed", None, TEN),
        "b": Payout("failed", "no_account", TEN),
        "c": Payout("cancelled", None, TEN),
        "d": Payout("failed", "processing_error", TEN),
    }
    assert provider_violations(payouts, [executed("a"), declined("no_account", "b")]) == []


def test_a_double_execution_is_caught():
    problems = provider_violations({"a": Payout("processed", None, TEN)}, [executed(), executed()])
    assert problems == ["a: executed 2 times at the provider"]


def test_a_lost_payout_is_caught():
    """Accepted but never finished, or reported processed with no money moved."""
    payouts = {"a": Payout("processing", None, TEN), "b": Payout("processed", None, TEN)}
    assert provider_violations(payouts, [executed("a")]) == [
        "a: still processing",
        "b: processed, but never executed at the provider",
    ]


def test_money_moved_for_a_failed_cancelled_or_unknown_payout_is_caught():
    payouts = {
        "a": Payout("failed", "processing_error", TEN),
        "b": Payout("cancelled", None, TEN),
    }
    assert provider_violations(payouts, [executed("a"), executed("b"), executed("z")]) == [
        "z: transfers for a payout that does not exist",
        "a: failed, but executed at the provider",
        "b: cancelled, but executed at the provider",
    ]


def test_a_wrong_amount_or_decline_code_is_caught():
    payouts = {"a": Payout("processed", None, TEN), "b": Payout("failed", "no_account", TEN)}
    transfers = [executed("a", Decimal("11")), declined("account_closed", "b")]
    assert provider_violations(payouts, transfers) == [
        "a: processed 10.0000, executed 11",
        "b: failed no_account, but the provider declined with ['account_closed']",
    ]


def test_an_illegal_transition_is_caught():
    events = [("a", None, "pending"), ("a", "pending", "failed")]
    assert history_violations(events, {"a": "failed"}) == ["a: illegal pending -> failed"]

"""The history checker the fault tests rely on must catch each kind of bad history."""

from __future__ import annotations

from tests.support.payout_checks import history_violations

CREATED = ("a", None, "pending")
STARTED = ("a", "pending", "processing")
PROCESSED = ("a", "processing", "processed")


def test_a_normal_history_passes():
    assert history_violations([CREATED, STARTED, PROCESSED], {"a": "processed"}) == []


def test_a_history_must_start_with_creation():
    assert history_violations([STARTED, PROCESSED], {"a": "processed"}) == [
        "a: starts with ('pending', 'processing')"
    ]


def test_an_illegal_transition_is_reported():
    bad = ("a", "processed", "failed")
    assert history_violations([CREATED, STARTED, PROCESSED, bad], {"a": "failed"}) == [
        "a: illegal processed -> failed"
    ]


def test_a_broken_chain_is_reported():
    # processing -> processed twice: the second one does not follow from "processed".
    problems = history_violations([CREATED, STARTED, PROCESSED, PROCESSED], {"a": "processed"})
    assert problems == ["a: processing -> processed after reaching processed"]


def test_the_history_must_end_in_the_payout_status():
    assert history_violations([CREATED, STARTED], {"a": "processed"}) == [
        "a: ends processing, payout is processed"
    ]


def test_a_payout_without_history_is_reported():
    assert history_violations(
        [CREATED, STARTED, PROCESSED], {"a": "processed", "b": "pending"}
    ) == ["b: no history"]

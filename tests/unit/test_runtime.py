"""payout_core.runtime: what a service does once started."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from payout_core.runtime import YOUNG_COLLECTION_THRESHOLD, settle_garbage_collector


class _Node:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def collector() -> Iterator[None]:
    """The collector as this test process had it, restored: no automatic pass may run
    meanwhile (it could collect a cycle before the function under test does)."""
    threshold = gc.get_threshold()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        gc.enable()


def test_startup_objects_are_frozen_and_startup_garbage_is_collected_first(collector: None):
    garbage = _Node()
    gone = weakref.ref(garbage)
    del garbage  # a cycle: only the collector frees it
    assert gone() is not None
    kept = _Node()
    settled = settle_garbage_collector()
    assert gone() is None, "start-up garbage would be frozen, never to be freed"
    frozen = settled["objects_frozen"]
    assert frozen == gc.get_freeze_count() and frozen > 1_000
    # The collector's generations (what its passes walk) no longer hold what lived then.
    assert not any(o is kept for o in gc.get_objects())


def test_young_objects_are_collected_less_often_and_the_older_generations_as_before(
    collector: None,
):
    gc.set_threshold(700, 11, 12)
    settled = settle_garbage_collector()
    assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, 11, 12)
    assert settled["young_threshold"] == YOUNG_COLLECTION_THRESHOLD > 700


def test_cycles_made_after_start_up_are_still_collected_automatically(collector: None):
    settle_garbage_collector()
    gc.enable()
    garbage = _Node()
    gone = weakref.ref(garbage)
    del garbage
    # More net allocations than the threshold: an automatic young pass must have run.
    alive = [[] for _ in range(2 * YOUNG_COLLECTION_THRESHOLD)]
    assert gone() is None
    del alive

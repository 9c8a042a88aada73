"""payout_core.runtime: what a service does once started."""

from __future__ import annotations

import gc
import weakref

from payout_core.runtime import freeze_startup_objects


class _Node:
    def __init__(self) -> None:
        self.me = self


def test_startup_objects_are_frozen_and_startup_garbage_is_collected_first():
    gc.disable()  # no automatic pass may collect the cycle before the function does
    try:
        garbage = _Node()
        gone = weakref.ref(garbage)
        del garbage  # a cycle: only the collector frees it
        assert gone() is not None
        kept = _Node()
        frozen = freeze_startup_objects()
        assert gone() is None, "start-up garbage would be frozen, never to be freed"
        assert frozen == gc.get_freeze_count() and frozen > 1_000
        # The collector's generations (what its passes walk) no longer hold what lived then.
        assert not any(o is kept for o in gc.get_objects())
    finally:
        gc.unfreeze()
        gc.enable()

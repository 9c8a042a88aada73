"""What a service process does once it has started, before it serves: the garbage collector
set for serving."""

from __future__ import annotations

import gc
from typing import Any

# Net allocations of tracked objects (made minus freed) between two young collections;
# CPython's default is 700. See settle_garbage_collector().
YOUNG_COLLECTION_THRESHOLD = 10_000


def settle_garbage_collector() -> dict[str, Any]:
    """Freeze the objects alive now and collect young objects less often; what was set, for
    the log.

    Frozen: after start-up a process holds some 100,000 objects that live as long as it does
    (modules, the app, pools, SQLAlchemy's and OpenTelemetry's structures). Each full
    (generation 2) pass of the collector walks them all, and under load one came every second
    or so: 53 ms each in the API at 1,150 POST/s, the p99 of every request in flight. Frozen,
    they are skipped; objects made later are collected as before. What start-up left as
    garbage is collected first, since frozen cycles are never freed: a start-up object that
    dies later inside a cycle (a pooled connection replaced after a failover, say) stays,
    which start-up's own size bounds.

    Young collections: with 64 requests in flight, the objects they hold exceed the default
    700 all the time, so a young collection came every few requests, found almost nothing to
    free (reference counting frees nearly everything) and promoted the live objects it walked,
    which the older generations' passes then walked again: 600 ms of collection in 14,000
    POSTs, 43 µs a request. At 10,000 it is 7 µs. The cost: garbage in reference cycles waits
    for at most that many net allocations before it is freed, as it waited for 700.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)
    return {"objects_frozen": gc.get_freeze_count(), "young_threshold": YOUNG_COLLECTION_THRESHOLD}

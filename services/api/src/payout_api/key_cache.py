"""API keys resolved to client ids, remembered for a few seconds in each API process.

Every request authenticates, and a database round trip per request costs more than the rest
of a GET. The price is a bound on revocation: a key disabled with `payout-admin disable-client`
keeps working for at most `ttl_s` (API_KEY_CACHE_TTL_S) in each process that saw it within that
window. Unknown and disabled keys are never remembered, so a new or re-enabled key works at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from payout_core.clients import hash_key

MAX_ENTRIES = 10_000


class KeyCache:
    def __init__(
        self,
        ttl_s: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        # SHA-256 of the key (the raw key is not kept) -> (client id, valid until).
        self._entries: dict[str, tuple[uuid.UUID, float]] = {}

    def get(self, key: str) -> uuid.UUID | None:
        if self._ttl <= 0:
            return None
        entry = self._entries.get(hash_key(key))
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]

    def put(self, key: str, client_id: uuid.UUID) -> None:
        if self._ttl <= 0:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()  # crude but bounded; the next requests refill it
        self._entries[hash_key(key)] = (client_id, self._clock() + self._ttl)

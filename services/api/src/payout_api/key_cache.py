"""Verified API keys, remembered for a few seconds in each API process.

Every request authenticates, and a database round trip per request costs more than the rest
of a GET. The price is a bound on revocation: a key disabled with `payout-admin disable-client`
or `revoke-key` keeps working for at most `ttl_s` (API_KEY_CACHE_TTL_S) in each process that saw
it within that window. Unknown and disabled keys are never remembered, so a new or re-enabled key
works at once. An expiry is never extended: a key with an expiry is remembered only until the
moment PostgreSQL said it had left, so a rolled key stops at its expiry, not up to a TTL later.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from payout_core.clients import VerifiedKey, hash_key

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
        # SHA-256 of the key (the raw key is not kept) -> (what it may do, valid until).
        self._entries: dict[str, tuple[VerifiedKey, float]] = {}

    def get(self, key: str) -> VerifiedKey | None:
        if self._ttl <= 0:
            return None
        entry = self._entries.get(hash_key(key))
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]

    def now(self) -> float:
        return self._clock()

    def put(self, key: str, verified: VerifiedKey, asked_at: float | None = None) -> None:
        """Remember a key verified by a lookup sent at `asked_at` (self.now()): counting from
        before the lookup, an expiry is never passed, whatever the lookup's latency."""
        if self._ttl <= 0:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()  # crude but bounded; the next requests refill it
        ttl = self._ttl if verified.expires_in_s is None else min(self._ttl, verified.expires_in_s)
        start = self._clock() if asked_at is None else asked_at
        self._entries[hash_key(key)] = (verified, start + ttl)

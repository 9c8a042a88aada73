"""The API-key cache: remembered for the TTL, never longer, never past the key's expiry, and
off at TTL 0."""

from __future__ import annotations

import uuid

from payout_api.key_cache import KeyCache
from payout_core.clients import VerifiedKey


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def verified(expires_in_s: float | None = None) -> VerifiedKey:
    return VerifiedKey(uuid.uuid4(), uuid.uuid4(), "write", expires_in_s)


def test_a_key_is_remembered_until_the_ttl_runs_out():
    clock = FakeClock()
    cache = KeyCache(ttl_s=5.0, clock=clock)
    key = verified()
    cache.put("sk_one", key)
    clock.now += 4.9
    assert cache.get("sk_one") == key
    clock.now += 0.1
    assert cache.get("sk_one") is None


def test_a_key_that_expires_sooner_than_the_ttl_is_forgotten_at_its_expiry():
    clock = FakeClock()
    cache = KeyCache(ttl_s=5.0, clock=clock)
    asked_at = cache.now()
    clock.now += 0.3  # the lookup's latency: the expiry counts from before it
    key = verified(expires_in_s=2.0)
    cache.put("sk_rolled", key, asked_at)
    clock.now = asked_at + 1.9
    assert cache.get("sk_rolled") == key
    clock.now = asked_at + 2.0
    assert cache.get("sk_rolled") is None


def test_unknown_keys_and_a_zero_ttl_remember_nothing():
    cache = KeyCache(ttl_s=0.0)
    cache.put("sk_one", verified())
    assert cache.get("sk_one") is None
    assert KeyCache(ttl_s=5.0).get("sk_never_seen") is None


def test_the_cache_stays_bounded():
    cache = KeyCache(ttl_s=5.0, max_entries=2)
    for n in range(5):
        cache.put(f"sk_{n}", verified())
    assert sum(cache.get(f"sk_{n}") is not None for n in range(5)) <= 2
    assert cache.get("sk_4") is not None

"""The API-key cache: remembered for the TTL, never longer, and off at TTL 0."""

from __future__ import annotations

import uuid

from payout_api.key_cache import KeyCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_remembered_until_the_ttl_runs_out():
    clock = FakeClock()
    cache = KeyCache(ttl_s=5.0, clock=clock)
    client = uuid.uuid4()
    cache.put("sk_one", client)
    clock.now += 4.9
    assert cache.get("sk_one") == client
    clock.now += 0.1
    assert cache.get("sk_one") is None


def test_unknown_keys_and_a_zero_ttl_remember_nothing():
    cache = KeyCache(ttl_s=0.0)
    cache.put("sk_one", uuid.uuid4())
    assert cache.get("sk_one") is None
    assert KeyCache(ttl_s=5.0).get("sk_never_seen") is None


def test_the_cache_stays_bounded():
    cache = KeyCache(ttl_s=5.0, max_entries=2)
    for n in range(5):
        cache.put(f"sk_{n}", uuid.uuid4())
    assert sum(cache.get(f"sk_{n}") is not None for n in range(5)) <= 2
    assert cache.get("sk_4") is not None

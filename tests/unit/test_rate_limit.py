"""The token bucket's arithmetic, on an injected clock."""

from __future__ import annotations

import pytest

from payout_api.rate_limit import RateLimiter, ratelimit_header


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_full_bucket_allows_the_burst_then_refuses(clock):
    limiter = RateLimiter(10.0, 5, clock=clock)
    decisions = [limiter.acquire("k") for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    refused = decisions[-1]
    assert refused.retry_after_s == 1  # 0.1 s to the next token, rounded up to whole seconds
    assert ratelimit_header(refused) == '"default";r=0;t=1'


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst(clock):
    limiter = RateLimiter(2.0, 4, clock=clock)
    for _ in range(4):
        assert limiter.acquire("k").allowed
    assert not limiter.acquire("k").allowed
    clock.now += 0.49  # 0.98 of a token
    assert not limiter.acquire("k").allowed
    clock.now += 0.01
    assert limiter.acquire("k").allowed  # exactly one token
    assert not limiter.acquire("k").allowed
    clock.now += 3600  # a long pause refills to the burst, not to 7,200
    assert sum(limiter.acquire("k").allowed for _ in range(10)) == 4


def test_refused_requests_take_no_token(clock):
    limiter = RateLimiter(1.0, 1, clock=clock)
    assert limiter.acquire("k").allowed
    step = 2**-10  # exact in binary floating point, like the sum below
    for _ in range(100):
        clock.now += step
        assert not limiter.acquire("k").allowed
    clock.now += 1 - 100 * step  # one second after the first request in total
    assert limiter.acquire("k").allowed


def test_retry_after_and_reset_are_whole_seconds_rounded_up(clock):
    limiter = RateLimiter(0.5, 3, clock=clock)  # a token every 2 s
    for _ in range(3):
        last = limiter.acquire("k")
    assert (last.remaining, last.reset_s) == (0, 6)  # 3 tokens at 0.5/s
    refused = limiter.acquire("k")
    assert (refused.allowed, refused.retry_after_s) == (False, 2)
    clock.now += 1.5
    assert limiter.acquire("k").retry_after_s == 1  # 0.5 s left, rounded up


def test_each_key_has_its_own_bucket(clock):
    limiter = RateLimiter(1.0, 2, clock=clock)
    assert [limiter.acquire("greedy").allowed for _ in range(5)] == [True, True] + [False] * 3
    assert limiter.acquire("polite").allowed
    assert limiter.acquire("polite").remaining == 0


def test_the_policy_header_states_burst_and_refill_window(clock):
    assert RateLimiter(100.0, 200, clock=clock).policy_header() == '"default";q=200;w=2'
    assert RateLimiter(0.5, 10, clock=clock).policy_header() == '"default";q=10;w=20'
    assert RateLimiter(100.0, 50, clock=clock).policy_header() == '"default";q=50;w=1'


def test_a_successful_response_counts_down_to_a_full_bucket(clock):
    limiter = RateLimiter(100.0, 200, clock=clock)
    first = limiter.acquire("k")
    assert ratelimit_header(first) == '"default";r=199;t=1'


def test_idle_keys_are_forgotten_once_their_bucket_would_be_full(clock):
    limiter = RateLimiter(10.0, 20, clock=clock)  # an empty bucket fills in 2 s
    for n in range(1000):
        limiter.acquire(f"key-{n}")
    assert len(limiter) == 1000
    clock.now += 1.99
    limiter.acquire("fresh")
    assert len(limiter) == 1001  # not yet full: still remembered
    clock.now += 0.01
    limiter.acquire("fresh")
    assert len(limiter) == 1  # the others were full again, the same as new


def test_a_forgotten_key_gets_no_more_than_a_remembered_one_would(clock):
    limiter = RateLimiter(10.0, 20, clock=clock)
    for _ in range(20):
        limiter.acquire("k")
    clock.now += 2.0
    limiter.acquire("other")  # sweeps "k" out
    assert sum(limiter.acquire("k").allowed for _ in range(25)) == 20


def test_the_number_of_buckets_is_capped(clock):
    limiter = RateLimiter(1.0, 1000, clock=clock, max_buckets=100)
    for n in range(500):
        limiter.acquire(n)
    assert len(limiter) == 100
    assert limiter.acquire(499).remaining == 998  # the newest are kept: its second request
    assert limiter.acquire(0).remaining == 999  # the oldest was dropped: a fresh bucket


def test_rate_zero_is_off():
    assert not RateLimiter(0.0, 10).enabled
    assert RateLimiter(0.1, 1).enabled

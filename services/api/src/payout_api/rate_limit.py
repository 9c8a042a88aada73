"""A token bucket per API key, in each API process (not shared between processes: with
API_WORKERS=2 and 3 replicas a key may get up to 6 times the rate, spread over them).

A bucket holds at most `burst` tokens and gains `rate_per_s` tokens a second; each request
takes one, and a request that finds less than one is refused. A bucket left alone for
burst / rate_per_s seconds is full again, exactly like a new one, so it is forgotten then:
memory holds only the keys seen in that last window.

The headers follow draft-ietf-httpapi-ratelimit-headers-11 (structured fields):
`RateLimit-Policy: "default";q=<burst>;w=<seconds to fill an empty bucket>` (q/w is the
sustained rate) and `RateLimit: "default";r=<whole tokens left>;t=<seconds>`, where t is the
time until the bucket is full again, or, on a refused request, until the next one is accepted
(the same as Retry-After).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

POLICY = "default"
MAX_BUCKETS = 100_000


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int  # whole tokens left after this request
    reset_s: int  # seconds until the bucket is full again (rounded up)
    retry_after_s: int  # seconds until a request is accepted again (0 when allowed)


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._max = max_buckets
        self._refill_s = burst / rate_per_s if rate_per_s > 0 else 0.0
        # key -> (tokens, when counted), least recently used first.
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def policy_header(self) -> str:
        window_s = max(1, math.ceil(self._refill_s))
        return f'"{POLICY}";q={self.burst};w={window_s}'

    def acquire(self, key: Hashable) -> Decision:
        now = self._clock()
        self._forget_full_buckets(now)
        tokens, counted_at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - counted_at) * self.rate_per_s)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)  # to the end: the most recently used
        retry_after_s = 0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate_per_s))
        reset_s = math.ceil((self.burst - tokens) / self.rate_per_s)
        return Decision(allowed, math.floor(tokens), reset_s, retry_after_s)

    def _forget_full_buckets(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            _, (_, counted_at) = next(iter(buckets.items()))
            if now - counted_at < self._refill_s and len(buckets) < self._max:
                return
            buckets.popitem(last=False)


def ratelimit_header(decision: Decision) -> str:
    t = decision.retry_after_s if not decision.allowed else decision.reset_s
    return f'"{POLICY}";r={decision.remaining};t={t}'

"""Per-endpoint-name token buckets for `POST /api/signal-endpoint/{name}`.

Each endpoint name has a bucket of `rate` tokens (at least 1) refilled at `rate` per second; a call
takes one token or is refused with the seconds to wait. Buckets live in this process only: with N
replicas an endpoint accepts up to N * rate calls per second — the limiter of SQLite (one host) and of
`SWITCHMAN_SIGNAL_RATE_LIMIT_SCOPE=process`; `cluster_rate_limit.py` shares the rate on PostgreSQL (ADR
0029). The number of buckets is bounded (names come from the request path, before any authentication),
evicting the least recently used.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

MAX_BUCKETS = 10_000


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until a call would be accepted again (0 when allowed).
    retry_after: int
    # Seconds until the bucket is full again.
    reset: int

    def headers(self) -> dict[str, str]:
        """IETF draft `RateLimit-*` headers (as express-rate-limit's `standardHeaders`), plus `Retry-After`."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class EndpointRateLimiter(Protocol):
    """What ingestion asks of a rate limiter: a decision per call of an endpoint name."""

    async def take(self, key: str) -> Decision:
        """Take one call's token for `key`, or be refused (the decision says how long to wait)."""
        ...

    async def close(self) -> None:
        """Stop any work in flight (at shutdown, before the database closes)."""
        ...


class RateLimiter:
    def __init__(
        self,
        rate_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive (0 means: do not create a limiter)")
        self.rate = rate_per_second
        self.capacity = max(1.0, rate_per_second)
        self._clock = clock
        self._max_buckets = max_buckets
        # key → (tokens, time of last refill)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def acquire(self, key: str) -> Decision:
        """Take one token from `key`'s bucket if there is one."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max_buckets:
            self._buckets.popitem(last=False)
        retry_after = 0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate))
        return Decision(
            allowed=allowed,
            limit=math.floor(self.capacity),
            remaining=math.floor(tokens),
            retry_after=retry_after,
            reset=math.ceil((self.capacity - tokens) / self.rate),
        )

    async def take(self, key: str) -> Decision:
        return self.acquire(key)

    async def close(self) -> None:
        """Nothing runs in the background."""

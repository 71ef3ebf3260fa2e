"""The per-endpoint-name token bucket, on a controlled clock."""

from __future__ import annotations

import pytest

from switchman.signal_endpoints.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_holds_one_second_of_calls_then_refuses() -> None:
    clock = Clock()
    limiter = RateLimiter(5, clock=clock)
    decisions = [limiter.acquire("a") for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    refused = decisions[-1]
    assert refused.retry_after == 1
    assert refused.headers() == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "1",
        "Retry-After": "1",
    }
    assert "Retry-After" not in decisions[0].headers()


def test_tokens_refill_with_time() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    assert limiter.acquire("a").allowed and limiter.acquire("a").allowed
    assert not limiter.acquire("a").allowed
    clock.now += 0.5  # one token back
    assert limiter.acquire("a").allowed
    assert not limiter.acquire("a").allowed
    clock.now += 60  # never more than the capacity
    assert [limiter.acquire("a").allowed for _ in range(3)] == [True, True, False]


def test_slow_rates_wait_long() -> None:
    clock = Clock()
    limiter = RateLimiter(0.1, clock=clock)
    assert limiter.acquire("a").allowed
    refused = limiter.acquire("a")
    assert not refused.allowed and refused.retry_after == 10 and refused.limit == 1
    clock.now += 9.9
    assert not limiter.acquire("a").allowed
    clock.now += 0.2
    assert limiter.acquire("a").allowed


def test_keys_have_separate_buckets_and_their_number_is_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(1, clock=clock, max_buckets=3)
    assert limiter.acquire("a").allowed
    assert not limiter.acquire("a").allowed
    assert limiter.acquire("b").allowed
    for key in ("c", "d", "e"):  # pushes the least recently used ("a") out
        limiter.acquire(key)
    assert limiter.acquire("a").allowed  # a new, full bucket
    assert len(limiter._buckets) == 3


def test_a_zero_rate_is_not_a_limiter() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)

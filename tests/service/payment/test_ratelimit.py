from __future__ import annotations

import pytest

from service.payment.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_refused_with_the_wait_until_the_next_token() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=6, burst=2, clock=clock)  # one token every 10 s
    assert limiter.take("0xa") is None
    assert limiter.take("0xa") is None
    assert limiter.take("0xa") == 10
    clock.now += 4
    assert limiter.take("0xa") == 6  # refused attempts spend nothing
    clock.now += 6
    assert limiter.take("0xa") is None
    assert limiter.take("0xa") == 10


def test_keys_have_their_own_buckets_and_refill_up_to_the_burst_only() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=60, burst=1, clock=clock)
    assert limiter.take("client") is None
    assert limiter.take("payer") is None
    assert limiter.take("client") == 1  # the wait is at least a second
    clock.now += 3600
    assert limiter.take("client") is None
    assert limiter.take("client") is not None  # an hour's idle time still buys one attempt, not 3600


def test_the_least_recently_seen_key_is_forgotten_beyond_max_keys() -> None:
    limiter = RateLimiter(per_minute=1, burst=1, max_keys=2, clock=FakeClock())
    for key in ("a", "b", "c"):
        assert limiter.take(key) is None
    assert limiter.take("c") is not None  # still remembered, so still limited
    assert limiter.take("a") is None  # forgotten: a full bucket again


@pytest.mark.parametrize(("per_minute", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_a_limit_that_allows_nothing_is_refused(per_minute: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimiter(per_minute, burst)

"""Rate limits on payment attempts: a token bucket per key (client address, payer), bounded in memory.

A payment attempt costs us a signature recovery, chain reads and ledger writes before the payment proves
anything, so both the client that sends them and the payer they claim to come from get a budget. The payer's
bucket is only charged after its signature has been recovered, so a forger cannot spend a victim's budget.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """`per_minute` attempts per key on average, up to `burst` at once; the least recently seen keys are
    forgotten beyond `max_keys` (a forgotten key starts again with a full bucket)."""

    def __init__(
        self, per_minute: float, burst: int, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError(f"a rate limit needs per_minute > 0 and burst >= 1, got {per_minute} and {burst}")
        self._rate_per_s = per_minute / 60.0
        self._burst = float(burst)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, updated at)

    def take(self, key: str) -> float | None:
        """Spend one attempt for `key`: None when allowed, else the seconds until one is available."""
        now = self._clock()
        tokens, updated = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - updated) * self._rate_per_s)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return None if allowed else max(1.0, math.ceil((1.0 - tokens) / self._rate_per_s))

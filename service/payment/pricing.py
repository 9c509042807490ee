"""Price of a paid request: ceil(duration_s x price_per_second_atomic), from the duration that is synthesized.

    price_per_second_atomic = ceil(price_per_minute_usd x 10^decimals / 60)     $0.01/min -> 167
    amount_atomic           = ceil(duration_s x price_per_second_atomic)        1 s -> 167, 5 s -> 835
                              x steps / included_steps, when more sampler steps than the model's default
                              are asked for (each step is one more pass of the model)
                              and at least min_charge_atomic (one settlement costs us gas)

Rounding the per-second rate up first is what the original server did (167 units/s, $0.01002/min); it keeps
the 1 s and 5 s prices of the original (a single ceil over the per-minute rate would give 834 for 5 s).
Durations are Decimals parsed from the request's text, so "2.3" is priced as 2.3 and never as
2.2999999999999998. The same canonical duration string is what the synthesis receives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from fractions import Fraction

from model.errors import InputError

DURATION_QUANTUM = Decimal("0.01")  # estimates are rounded up to this step before they are priced


@dataclass(frozen=True)
class DurationBounds:
    min_s: float
    max_s: float


@dataclass(frozen=True)
class Pricing:
    price_per_minute_usd: Decimal
    decimals: int
    min_charge_usd: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if not self.price_per_minute_usd.is_finite() or self.price_per_minute_usd <= 0:
            raise ValueError(f"price_per_minute_usd must be a positive number, got {self.price_per_minute_usd}")

    @property
    def price_per_second_atomic(self) -> int:
        return int(math.ceil(self.price_per_minute_usd * (10**self.decimals) / 60))

    @property
    def min_charge_atomic(self) -> int:
        return int(math.ceil(self.min_charge_usd * (10**self.decimals)))

    def amount_atomic(self, duration_s: Decimal, steps: int | None = None, included_steps: int | None = None) -> int:
        amount = Fraction(duration_s) * self.price_per_second_atomic
        if steps is not None and included_steps is not None and steps > included_steps:
            amount = amount * steps / included_steps
        return max(math.ceil(amount), self.min_charge_atomic)

    def amount_usd(self, amount_atomic: int) -> Decimal:
        return Decimal(amount_atomic).scaleb(-self.decimals)


def parse_duration(raw: str, bounds: DurationBounds) -> Decimal:
    """A request's `duration` text as a Decimal within bounds.

    Raises:
        InputError: not a finite number, or outside [min_s, max_s] (field "duration").
    """
    try:
        duration_s = Decimal(raw.strip())
    except InvalidOperation:
        raise InputError(
            f"duration must be a number of seconds, got {raw[:40]!r}", field="duration", code="invalid"
        ) from None
    if not duration_s.is_finite():
        raise InputError(f"duration must be finite, got {raw[:40]!r}", field="duration", code="invalid")
    if not bounds.min_s <= duration_s <= bounds.max_s:
        raise InputError(
            f"duration must be between {bounds.min_s} and {bounds.max_s} s, got {duration_s}",
            field="duration",
            code="out_of_range",
        )
    return duration_s


def parse_steps(raw: object, max_steps: int) -> int:
    """A request's `steps` as an int in [1, max_steps] (the price depends on it).

    Raises:
        InputError: not a whole number in range (field "steps").
    """
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise InputError("steps must be a whole number", field="steps", code="invalid")
    try:
        steps = int(raw)
    except ValueError:
        raise InputError(
            f"steps must be a whole number, got {str(raw)[:20]!r}", field="steps", code="invalid"
        ) from None
    if not 1 <= steps <= max_steps:
        raise InputError(f"steps must be between 1 and {max_steps}, got {steps}", field="steps", code="out_of_range")
    return steps


def quantize_estimate(duration_s: float, bounds: DurationBounds) -> Decimal:
    """An estimated duration rounded up to DURATION_QUANTUM and clamped into bounds."""
    rounded = Decimal(repr(duration_s)).quantize(DURATION_QUANTUM, rounding=ROUND_CEILING)
    low = Decimal(repr(bounds.min_s)).quantize(DURATION_QUANTUM, rounding=ROUND_CEILING)
    high = Decimal(repr(bounds.max_s)).quantize(DURATION_QUANTUM, rounding=ROUND_FLOOR)
    return min(max(rounded, low), high)


def format_duration(duration_s: Decimal) -> str:
    """Canonical text of a duration for the query string: no exponent, no trailing zeros ("3", "2.5")."""
    return format(duration_s.normalize(), "f")

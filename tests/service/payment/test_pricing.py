"""Prices in atomic units from durations: the original's 167 and 835, exact decimals, rounding of estimates."""

from __future__ import annotations

from decimal import Decimal

import pytest

from model.errors import InputError
from service.payment.pricing import DurationBounds, Pricing, format_duration, parse_duration, quantize_estimate

BOUNDS = DurationBounds(min_s=0.5, max_s=30.0)
CENT_PER_MINUTE = Pricing(Decimal("0.01"), decimals=6)


@pytest.mark.parametrize(("duration", "amount"), [("1", 167), ("5", 835), ("0.5", 84), ("2.3", 385), ("30", 5010)])
def test_default_price_matches_the_original(duration: str, amount: int) -> None:
    assert CENT_PER_MINUTE.price_per_second_atomic == 167
    assert CENT_PER_MINUTE.amount_atomic(Decimal(duration)) == amount


def test_price_follows_the_configured_rate() -> None:
    five_cents = Pricing(Decimal("0.05"), decimals=6)
    assert five_cents.price_per_second_atomic == 834  # ceil(50000 / 60)
    assert five_cents.amount_atomic(Decimal("60")) == 50_040
    assert CENT_PER_MINUTE.amount_usd(835) == Decimal("0.000835")
    with pytest.raises(ValueError, match="positive"):
        Pricing(Decimal("0"), decimals=6)


@pytest.mark.parametrize(
    ("raw", "code"), [("abc", "invalid"), ("nan", "invalid"), ("inf", "invalid"), ("0.1", "out_of_range"),
                      ("30.01", "out_of_range"), ("-3", "out_of_range"), ("", "invalid")],
)  # fmt: skip
def test_parse_duration_refuses_what_cannot_be_priced(raw: str, code: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_duration(raw, BOUNDS)
    assert (raised.value.field, raised.value.code) == ("duration", code)


def test_parse_duration_keeps_the_decimal_text() -> None:
    assert parse_duration(" 2.30 ", BOUNDS) == Decimal("2.30")
    assert format_duration(Decimal("2.30")) == "2.3"
    assert format_duration(Decimal("30")) == "30"


def test_estimates_round_up_to_a_hundredth_and_stay_in_bounds() -> None:
    assert quantize_estimate(2.431, BOUNDS) == Decimal("2.44")
    assert quantize_estimate(2.43, BOUNDS) == Decimal("2.43")
    assert quantize_estimate(0.2, BOUNDS) == Decimal("0.5")
    assert quantize_estimate(99.0, BOUNDS) == Decimal("30")

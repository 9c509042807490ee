from __future__ import annotations

import math
from typing import Any

import pytest

from model.errors import InputError
from model.runtime.limits import RuntimeLimits
from service.metrics import ServiceMetrics
from service.settings import Settings
from service.synthesis import MAX_SEED, PreparedText, ServiceLimits, SynthesisPipeline, _header_text


def test_default_steps_are_the_models_unless_set() -> None:
    from model.runtime.limits import RuntimeLimits
    from service.synthesis import ServiceLimits

    assert Settings().default_steps is None
    assert ServiceLimits.combine(Settings(), RuntimeLimits(), 100, 16).default_steps == 16
    assert ServiceLimits.combine(Settings(default_steps=6), RuntimeLimits(), 100, 16).default_steps == 6
    with pytest.raises(ValueError, match="SMALLTTS_MAX_STEPS"):
        ServiceLimits.combine(Settings(max_steps=8), RuntimeLimits(), 100, 16)


def test_the_limits_users_see_are_the_narrower_of_settings_and_runtime() -> None:
    settings = Settings(max_duration_s=90.0, min_duration_s=0.05, max_reference_s=10.0, max_steps=100)
    limits = ServiceLimits.combine(settings, RuntimeLimits(), max_tokens=512, model_default_steps=4)
    runtime = RuntimeLimits()
    assert (limits.max_duration_s, limits.min_duration_s) == (runtime.max_duration_s, runtime.min_duration_s)
    assert (limits.max_reference_s, limits.max_steps, limits.max_tokens) == (10.0, runtime.max_steps, 512)
    assert limits.reference_limits().max_reference_s == 10.0


def _pipeline(**settings: Any) -> SynthesisPipeline:
    limits = ServiceLimits.combine(Settings(**settings), RuntimeLimits(), max_tokens=512, model_default_steps=4)
    return SynthesisPipeline(None, None, limits, ServiceMetrics(), strict_tags=False)  # type: ignore[arg-type]


def test_a_missing_duration_is_the_text_estimate_over_speed_clamped_to_the_limits() -> None:
    pipeline = _pipeline(min_duration_s=0.5, max_duration_s=30.0)
    text = PreparedText(token_ids=(1, 2), warnings=(), estimated_duration_s=3.0)
    assert pipeline.resolve_duration(None, text) == (3.0, True)
    assert pipeline.resolve_duration(None, text, speed=2.0) == (1.5, True)
    assert pipeline.resolve_duration(None, text, speed=0.01) == (30.0, True)
    assert pipeline.resolve_duration(None, text, speed=100.0) == (0.5, True)
    assert pipeline.resolve_duration(2.0, text) == (2.0, False)


@pytest.mark.parametrize(
    ("duration_s", "code"),
    [
        (math.nan, "duration_not_finite"),
        (math.inf, "duration_not_finite"),
        (0.1, "duration_out_of_range"),
        (31.0, "duration_out_of_range"),
    ],
)
def test_a_duration_out_of_bounds_is_an_input_error(duration_s: float, code: str) -> None:
    text = PreparedText(token_ids=(1,), warnings=(), estimated_duration_s=1.0)
    with pytest.raises(InputError) as caught:
        _pipeline(min_duration_s=0.5, max_duration_s=30.0).resolve_duration(duration_s, text)
    assert (caught.value.field, caught.value.code) == ("duration", code)


def test_steps_default_to_the_models_and_stay_within_the_maximum() -> None:
    pipeline = _pipeline(max_steps=8)
    assert (pipeline.resolve_steps(None), pipeline.resolve_steps(8)) == (4, 8)
    for steps in (0, 9):
        with pytest.raises(InputError, match="steps must be between 1 and 8"):
            pipeline.resolve_steps(steps)


def test_seeds_are_drawn_when_missing_and_checked_when_given() -> None:
    assert 0 <= SynthesisPipeline.resolve_seed(None) < 2**31
    assert SynthesisPipeline.resolve_seed(MAX_SEED) == MAX_SEED
    for seed in (-1, MAX_SEED + 1):
        with pytest.raises(InputError, match="seed must be between"):
            SynthesisPipeline.resolve_seed(seed)


def test_header_text_is_printable_ascii_on_one_line_and_short() -> None:
    assert _header_text("tag [laugh] dropped\nnext — line") == "tag [laugh] dropped?next ? line"
    assert len(_header_text("x" * 5000)) == 1024

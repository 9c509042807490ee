from __future__ import annotations

import dataclasses

import pytest

from model.runtime.limits import RuntimeLimits


def test_defaults_are_consistent_and_frozen() -> None:
    limits = RuntimeLimits()
    assert 0 < limits.min_duration_s <= limits.max_duration_s
    assert 0 < limits.min_reference_s <= limits.max_reference_s
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_steps = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "fields",
    [
        {"min_duration_s": 0.0},
        {"min_duration_s": 5.0, "max_duration_s": 4.0},
        {"min_reference_s": -1.0},
        {"min_reference_s": 3.0, "max_reference_s": 2.0},
        {"max_tokens": 0},
        {"max_steps": 0},
    ],
)
def test_inconsistent_bounds_are_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="RuntimeLimits"):
        RuntimeLimits(**fields)


def test_equal_bounds_are_allowed() -> None:
    limits = RuntimeLimits(min_duration_s=2.0, max_duration_s=2.0, min_reference_s=1.0, max_reference_s=1.0)
    assert limits.max_duration_s == 2.0

"""Request checks without any model: RequestChecker on the tiny preset's config."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from model.config import preset_config
from model.errors import InputError
from model.runtime.limits import RuntimeLimits
from model.runtime.request import RequestChecker, StageTimings, SynthesisRequest, frames_for_duration


@pytest.fixture
def checker() -> RequestChecker:
    return RequestChecker(preset_config("tiny"), RuntimeLimits(), latent_dim=64)


def _good() -> SynthesisRequest:
    return SynthesisRequest(token_ids=(5, 6, 7), ref_latents=np.zeros((8, 64), np.float32), duration_s=1.0, seed=3)


@pytest.mark.parametrize(
    ("duration_s", "frames"),
    [(3.0, 23), (3.1, 24), (3.3, 25), (3.6, 27), (2.0, 15), (0.4, 3), (0.01, 1), (10.0, 75), (1 / 7.5, 1)],
)
def test_frame_count_is_the_ceiling_of_duration_times_frame_rate(duration_s: float, frames: int) -> None:
    assert frames_for_duration(duration_s, 7.5) == frames


def test_a_good_request_becomes_the_arrays_the_graphs_take(checker: RequestChecker) -> None:
    prepared = checker.prepare(_good())
    assert prepared.token_ids.dtype == np.int64 and prepared.ref_latents.dtype == np.float32
    assert (prepared.num_frames, prepared.seed, prepared.timesteps) == (8, 3, (1.0, 0.75, 0.5, 0.25))
    assert prepared.ref_key == checker.prepare(replace(_good(), seed=4)).ref_key
    original = checker.prepare(replace(_good(), timestep_table="original")).timesteps
    np.testing.assert_allclose(original, [1.0, 2 / 3, 1 / 3, 0.0])


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"duration_s": float("nan")}, "duration", "duration_out_of_range"),
        ({"duration_s": float("inf")}, "duration", "duration_out_of_range"),
        ({"duration_s": -1.0}, "duration", "duration_out_of_range"),
        ({"duration_s": 0.0}, "duration", "duration_out_of_range"),
        ({"duration_s": 1e9}, "duration", "duration_out_of_range"),
        ({"duration_s": "3"}, "duration", "duration_invalid"),
        ({"num_steps": 0}, "steps", "steps_out_of_range"),
        ({"num_steps": 65}, "steps", "steps_out_of_range"),
        ({"num_steps": 2.5}, "steps", "steps_out_of_range"),
        ({"timestep_table": "cosine"}, "schedule", "schedule_unknown"),
        ({"seed": -1}, "seed", "seed_invalid"),
        ({"token_ids": ()}, "text", "text_empty"),
        ({"token_ids": tuple([5] * 2049)}, "text", "text_too_long"),
        ({"token_ids": (1, 198)}, "text", "text_invalid"),
        ({"token_ids": (1.5, 2.0)}, "text", "text_invalid"),
        ({"ref_latents": np.zeros((0, 64), np.float32)}, "audio", "audio_empty"),
        ({"ref_latents": np.zeros((10, 32), np.float32)}, "audio", "reference_invalid"),
        ({"ref_latents": np.full((10, 64), np.nan, np.float32)}, "audio", "reference_invalid"),
        ({"ref_latents": np.zeros((226, 64), np.float32)}, "audio", "audio_too_long"),
    ],
)
def test_every_bad_request_is_an_input_error(
    checker: RequestChecker, change: dict[str, object], field: str, code: str
) -> None:
    with pytest.raises(InputError) as info:
        checker.prepare(replace(_good(), **change))  # type: ignore[arg-type]
    assert (info.value.field, info.value.code) == (field, code)
    assert "\n" not in str(info.value)


def test_stage_timings_add_step_by_step() -> None:
    timings = StageTimings()
    timings.add_steps([1.0, 2.0])
    timings.add_steps([1.0, 2.0, 3.0])
    assert timings.denoise_step_ms == [2.0, 4.0, 3.0]

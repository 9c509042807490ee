"""The samplers: DDIM lands on the data when the velocity is exact; guidance mixes the two passes as documented."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from model.config import ScheduleConfig
from model.runtime.sampler import Conditioning, Sampler
from model.schedule import alpha_sigma, teacher_timesteps

LATENT_DIM = 4


class TrueVelocity:
    """Stands in for denoiser.onnx: the exact velocity towards fixed data x0 (so a correct sampler recovers x0).

    With phonemes masked out (the unconditional pass) it points to -x0 instead, so guidance is visible.
    """

    def __init__(self, x0: np.ndarray, schedule: ScheduleConfig, accepts_batch: bool = True) -> None:
        self.x0, self.schedule, self.accepts_batch = x0, schedule, accepts_batch
        self.calls: list[int] = []  # batch size of every call

    def upload(self, index: int, array: np.ndarray) -> np.ndarray:
        return array  # OnnxGraph.upload without I/O binding: the array itself

    def run(self, x_t: np.ndarray, mask: np.ndarray, t: np.ndarray, *rest: Any) -> list[np.ndarray]:
        phonemes_mask = rest[5]
        self.calls.append(x_t.shape[0])
        alpha, sigma = alpha_sigma(t.astype(np.float64), self.schedule)
        alpha, sigma = alpha[:, None, None], sigma[:, None, None]
        x0 = np.concatenate([self.x0] * (x_t.shape[0] // self.x0.shape[0]))[:, : x_t.shape[1]]
        x0 = np.where(phonemes_mask.any(axis=1)[:, None, None], x0, -x0)
        eps = (x_t - alpha * x0) / sigma
        return [(alpha * eps - sigma * x0).astype(np.float32)]


def _conditioning(batch: int) -> Conditioning:
    kv = np.zeros((1, batch, 1, 2, 2), dtype=np.float32)
    return Conditioning(kv, kv, np.ones((batch, 2), bool), kv, kv, np.ones((batch, 2), bool))


def _sampler(schedule: ScheduleConfig, denoiser: TrueVelocity) -> Sampler:
    return Sampler(denoiser, schedule, LATENT_DIM, rope_dim=4, rope_theta=10_000.0)  # type: ignore[arg-type]


def _data(batch: int, frames: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((batch, frames, LATENT_DIM)).astype(np.float32)


@pytest.mark.parametrize("steps", [1, 4, 16])
def test_ddim_with_the_true_velocity_recovers_the_data(steps: int) -> None:
    schedule = ScheduleConfig(sampler="ddim", num_steps=steps)
    x0 = _data(2, 6)
    denoiser = TrueVelocity(x0, schedule)
    out = _sampler(schedule, denoiser).sample(_conditioning(2), [6, 6], [1, 2], teacher_timesteps(steps))
    np.testing.assert_allclose(out, x0, atol=1e-3)
    assert denoiser.calls == [2] * steps


def test_ddim_zeroes_padding_and_items_do_not_depend_on_the_batch() -> None:
    schedule = ScheduleConfig(sampler="ddim", num_steps=3)
    x0 = _data(2, 5)

    def run(batch_x0: np.ndarray, frames: list[int], seeds: list[int]) -> np.ndarray:
        sampler = _sampler(schedule, TrueVelocity(batch_x0, schedule))
        return sampler.sample(_conditioning(len(frames)), frames, seeds, teacher_timesteps(3))

    both = run(x0, [5, 3], [7, 8])
    assert np.all(both[1, 3:] == 0.0)
    np.testing.assert_allclose(both[1, :3], run(x0[1:], [3], [8])[0], atol=1e-6)


@pytest.mark.parametrize("accepts_batch", [True, False])
def test_guidance_extrapolates_from_the_unconditional_pass(accepts_batch: bool) -> None:
    """v = v_u + s (v_c - v_u): with v_c towards x0 and v_u towards -x0, one step from t=1 lands on (2s - 1) x0."""
    schedule = ScheduleConfig(sampler="ddim", num_steps=1, guidance_scale=2.0)
    x0 = _data(1, 4)
    denoiser = TrueVelocity(x0, schedule, accepts_batch=accepts_batch)
    out = _sampler(schedule, denoiser).sample(_conditioning(1), [4], [0], teacher_timesteps(1))
    np.testing.assert_allclose(out, 3.0 * x0, atol=1e-3)
    assert denoiser.calls == ([2] if accepts_batch else [1, 1])


def test_the_student_loop_is_unchanged_without_guidance() -> None:
    schedule = ScheduleConfig()
    x0 = _data(1, 3)
    denoiser = TrueVelocity(x0, schedule)
    out = _sampler(schedule, denoiser).sample(_conditioning(1), [3], [0], (1.0, 0.75, 0.5, 0.25))
    np.testing.assert_allclose(out, x0, atol=1e-4)
    assert denoiser.calls == [1, 1, 1, 1]
    assert replace(schedule).sampler == "student" and schedule.guidance_scale == 1.0

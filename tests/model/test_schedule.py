from __future__ import annotations

import math

import numpy as np
import pytest

from model.config import ScheduleConfig
from model.schedule import (
    ORIGINAL_TIMESTEPS,
    TRAINED_TIMESTEPS,
    add_noise,
    alpha_sigma,
    ddim_step,
    eps_from_v,
    logsnr,
    student_step,
    teacher_timesteps,
    timesteps,
    validate_num_steps,
    velocity_target,
    x0_from_v,
)

# Spec §1.9: (t, alpha, sigma) of the shifted cosine schedule, 5 significant digits.
SPEC_TABLE = [
    (1.0, 7.854e-6, 1.0),
    (0.75, 0.20280, 0.97922),
    (2 / 3, 0.27735, 0.96077),
    (0.5, 0.44721, 0.89443),
    (1 / 3, 0.65465, 0.75593),
    (0.25, 0.77008, 0.63795),
]


@pytest.mark.parametrize(("t", "alpha", "sigma"), SPEC_TABLE)
def test_alpha_sigma_match_the_spec_table(t: float, alpha: float, sigma: float) -> None:
    a, s = alpha_sigma(t)
    assert isinstance(a, float) and isinstance(s, float)
    assert a == pytest.approx(alpha, rel=1e-3)
    assert s == pytest.approx(sigma, rel=1e-4)


def test_t_zero_is_clipped_like_the_original() -> None:
    alpha, sigma = alpha_sigma(0.0)
    assert alpha == pytest.approx(1.0)
    assert sigma == pytest.approx(3.14e-5, rel=1e-2)  # Python's float64 value in the spec, not exactly 0


def test_alpha_squared_plus_sigma_squared_is_one() -> None:
    t = np.linspace(0.0, 1.0, 101)
    alpha, sigma = alpha_sigma(t.astype(np.float64))
    np.testing.assert_allclose(alpha**2 + sigma**2, 1.0, atol=1e-12)
    assert np.all(np.diff(alpha) < 0) and np.all(np.diff(sigma) > 0)  # noise grows with t


def test_logsnr_is_the_plain_cosine_shifted_by_minus_ln4() -> None:
    t = np.array([0.2, 0.4, 0.6, 0.8])
    plain = np.log(np.cos(np.pi * t / 2) ** 2 / np.sin(np.pi * t / 2) ** 2)
    np.testing.assert_allclose(logsnr(t), plain - math.log(4.0), rtol=1e-9)


def test_float32_arrays_keep_their_dtype() -> None:
    alpha, sigma = alpha_sigma(np.array([0.25, 0.5], dtype=np.float32))
    assert alpha.dtype == np.float32 and sigma.dtype == np.float32


def test_v_and_x0_round_trip() -> None:
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((3, 7, 64))
    eps = rng.standard_normal((3, 7, 64))
    t = np.array([0.25, 0.5, 0.9])  # one t per item broadcasts over (n c)
    x_t = add_noise(x0, eps, t)
    v = velocity_target(x0, eps, t)
    np.testing.assert_allclose(x0_from_v(x_t, v, t), x0, atol=1e-10)
    np.testing.assert_allclose(eps_from_v(x_t, v, t), eps, atol=1e-10)
    np.testing.assert_allclose(student_step(None, v, x_t, t), x0, atol=1e-10)


def test_ddim_step_with_the_true_velocity_lands_on_the_true_path() -> None:
    rng = np.random.default_rng(1)
    x0, eps = rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 4))
    x_t = add_noise(x0, eps, 0.8)
    v = velocity_target(x0, eps, 0.8)
    np.testing.assert_allclose(ddim_step(x_t, v, 0.8, 0.3), add_noise(x0, eps, 0.3), atol=1e-10)


def test_numpy_and_torch_give_the_same_numbers() -> None:
    torch = pytest.importorskip("torch")
    t = np.array([1.0, 0.75, 2 / 3, 0.5, 1 / 3, 0.25, 0.0])
    a_np, s_np = alpha_sigma(t)
    a_pt, s_pt = alpha_sigma(torch.tensor(t, dtype=torch.float64))
    np.testing.assert_allclose(a_pt.numpy(), a_np, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(s_pt.numpy(), s_np, rtol=1e-12, atol=1e-15)
    rng = np.random.default_rng(2)
    x0, eps = rng.standard_normal((7, 3, 2)), rng.standard_normal((7, 3, 2))
    v_pt = velocity_target(torch.tensor(x0), torch.tensor(eps), torch.tensor(t))
    np.testing.assert_allclose(v_pt.numpy(), velocity_target(x0, eps, t), atol=1e-12)


def test_timestep_tables() -> None:
    assert timesteps() == TRAINED_TIMESTEPS == (1.0, 0.75, 0.5, 0.25)
    assert timesteps("original") == ORIGINAL_TIMESTEPS
    np.testing.assert_allclose(ORIGINAL_TIMESTEPS, [1.0, 2 / 3, 1 / 3, 0.0], atol=1e-7)
    assert timesteps("trained", 2) == (1.0, 0.5)
    assert timesteps("trained", 8)[-1] == pytest.approx(0.125)
    assert len(timesteps("original", 6)) == 6 and timesteps("original", 6)[-1] == 0.0
    with pytest.raises(ValueError, match="trained"):
        timesteps("cosine")


def test_teacher_timesteps_and_step_bounds() -> None:
    assert teacher_timesteps(4) == (1.0, 0.75, 0.5, 0.25, 0.0)
    assert validate_num_steps(4) == 4
    for bad in (0, 65):
        with pytest.raises(ValueError, match="steps"):
            validate_num_steps(bad)


def test_schedule_config_changes_the_shift() -> None:
    unshifted = ScheduleConfig(logsnr_shift=0.0)
    alpha, _ = alpha_sigma(0.5, unshifted)
    assert alpha == pytest.approx(math.cos(math.pi / 4))

"""Torch-free noise schedule and v-prediction algebra, shared by training, export checks and the runtime.

The schedule is the original's: a cosine schedule whose log-SNR is shifted by -ln 4 (SNR divided by 4),
with t clipped to [1e-5, 1 - 1e-5]:

    alpha^2 = sigmoid(logsnr(t) + shift) = cos^2 k / (cos^2 k + sin^2),  k = exp(shift), angle = pi t / 2
    x_t = alpha x0 + sigma eps,   v = alpha eps - sigma x0,   x0 = alpha x_t - sigma v

Every function works on Python floats, numpy arrays and torch tensors (without importing torch): torch
tensors are recognised by their `clamp` method. The denoising loop belongs to the caller; this module only
provides single steps (`student_step` for the DMD2 student, `ddim_step` for the many-step teacher).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from model.config import ScheduleConfig

TimestepTable = Literal["trained", "original"]

# The 4-step student was distilled at these t (backward simulation); the original sampled at linspace(1, 0, 4),
# whose last step (t = 0, sigma ~ 0) is a wasted denoiser call. Both stay selectable.
TRAINED_TIMESTEPS: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
ORIGINAL_TIMESTEPS: tuple[float, ...] = tuple(float(x) for x in np.linspace(1.0, 0.0, 4, dtype=np.float32))


def _is_torch(x: Any) -> bool:
    return hasattr(x, "clamp") and hasattr(x, "detach")


def alpha_sigma(t: Any, cfg: ScheduleConfig | None = None) -> tuple[Any, Any]:
    """(alpha, sigma) at t; t is a float, a numpy array or a torch tensor (same type comes back)."""
    cfg = cfg or ScheduleConfig()
    k = math.exp(cfg.logsnr_shift)
    if _is_torch(t):
        tc = t.clamp(cfg.t_min, cfg.t_max)
        angle = tc * (math.pi / 2)
        cos2, sin2 = angle.cos() ** 2, angle.sin() ** 2
        alpha2 = cos2 * k / (cos2 * k + sin2)
        return alpha2.sqrt(), (1 - alpha2).sqrt()
    arr = np.clip(np.asarray(t, dtype=np.float64), cfg.t_min, cfg.t_max)
    angle = arr * (math.pi / 2)
    cos2, sin2 = np.cos(angle) ** 2, np.sin(angle) ** 2
    alpha2 = cos2 * k / (cos2 * k + sin2)
    alpha, sigma = np.sqrt(alpha2), np.sqrt(1.0 - alpha2)
    if np.ndim(t) == 0 and not isinstance(t, np.ndarray):
        return float(alpha), float(sigma)
    dtype = t.dtype if isinstance(t, np.ndarray) and t.dtype.kind == "f" else np.float32
    return alpha.astype(dtype), sigma.astype(dtype)


def logsnr(t: Any, cfg: ScheduleConfig | None = None) -> Any:
    alpha, sigma = alpha_sigma(t, cfg)
    if _is_torch(alpha):
        return (alpha**2 / sigma**2).log()
    return np.log(np.asarray(alpha, dtype=np.float64) ** 2 / np.asarray(sigma, dtype=np.float64) ** 2)


def _bcast(coef: Any, like: Any) -> Any:
    """Reshapes a per-item coefficient (b,) so it broadcasts against (b, n, c)."""
    if isinstance(coef, float):
        return coef
    ndim = like.dim() if _is_torch(like) else np.ndim(like)
    return coef.reshape(tuple(coef.shape) + (1,) * (ndim - len(coef.shape)))


def add_noise(x0: Any, eps: Any, t: Any, cfg: ScheduleConfig | None = None) -> Any:
    """x_t = alpha x0 + sigma eps."""
    alpha, sigma = alpha_sigma(t, cfg)
    return _bcast(alpha, x0) * x0 + _bcast(sigma, x0) * eps


def velocity_target(x0: Any, eps: Any, t: Any, cfg: ScheduleConfig | None = None) -> Any:
    """v = alpha eps - sigma x0: what the network is trained to predict."""
    alpha, sigma = alpha_sigma(t, cfg)
    return _bcast(alpha, x0) * eps - _bcast(sigma, x0) * x0


def x0_from_v(x_t: Any, v: Any, t: Any, cfg: ScheduleConfig | None = None) -> Any:
    alpha, sigma = alpha_sigma(t, cfg)
    return _bcast(alpha, x_t) * x_t - _bcast(sigma, x_t) * v


def eps_from_v(x_t: Any, v: Any, t: Any, cfg: ScheduleConfig | None = None) -> Any:
    alpha, sigma = alpha_sigma(t, cfg)
    return _bcast(sigma, x_t) * x_t + _bcast(alpha, x_t) * v


def timesteps(
    table: TimestepTable | str = "trained", num_steps: int | None = None, trained: tuple[float, ...] | None = None
) -> tuple[float, ...]:
    """The student's timestep list: `trained` (1, .75, .5, .25) or `original` (linspace(1, 0, 4)).

    `trained` is the student's own list when its sidecar records one (ScheduleConfig.student_timesteps) and
    num_steps is None or its length. With another num_steps, `trained` generalises to 1 - i/num_steps and
    `original` to linspace(1, 0, num_steps), so the same tables serve a student sampled with more or fewer steps.
    """
    if table == "trained":
        if trained is not None and (num_steps is None or num_steps == len(trained)):
            return tuple(trained)
        if num_steps is None or num_steps == 4:
            return TRAINED_TIMESTEPS
        return tuple(1.0 - i / num_steps for i in range(num_steps))
    if table == "original":
        if num_steps is None or num_steps == 4:
            return ORIGINAL_TIMESTEPS
        return tuple(float(x) for x in np.linspace(1.0, 0.0, num_steps, dtype=np.float32))
    raise ValueError(f"unknown timestep table {table!r}; choose 'trained' or 'original'")


def validate_num_steps(num_steps: int, max_steps: int = 64) -> int:
    if not 1 <= num_steps <= max_steps:
        raise ValueError(f"steps must be between 1 and {max_steps}, got {num_steps}")
    return num_steps


def student_step(x_pred: Any, v: Any, x_t: Any, t: Any, cfg: ScheduleConfig | None = None) -> Any:
    """One step of the distilled student's loop: the denoised estimate at t (the caller re-noises it).

    The loop (original §1.10, seeded here): x_pred = 0; for t in table: x_t = add_noise(x_pred, fresh eps, t);
    v = denoiser(x_t, t); x_pred = student_step(...). `x_pred` is unused and kept for symmetry with ddim_step.
    """
    del x_pred
    return x0_from_v(x_t, v, t, cfg)


def ddim_step(x_t: Any, v: Any, t: Any, t_next: Any, cfg: ScheduleConfig | None = None) -> Any:
    """Deterministic DDIM step from t to t_next (< t) for the many-step teacher sampler."""
    x0 = x0_from_v(x_t, v, t, cfg)
    eps = eps_from_v(x_t, v, t, cfg)
    return add_noise(x0, eps, t_next, cfg)


def teacher_timesteps(num_steps: int) -> tuple[float, ...]:
    """t_0 = 1 > t_1 > ... > t_N = 0 for an N-step DDIM teacher sampler (N + 1 values)."""
    validate_num_steps(num_steps, max_steps=1024)
    return tuple(float(x) for x in np.linspace(1.0, 0.0, num_steps + 1))

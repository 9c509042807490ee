"""DMD2's model-agnostic pieces (Yin et al. 2024, "Improved Distribution Matching Distillation"), on our shifted
cosine v-prediction schedule. `training.distill` applies them to the DiT; the toy test applies them to a 2-D
Gaussian mixture whose exact teacher is known, so the maths is checked apart from any network.

Legend:
    b  batch
    n  frames (1 for the toy problem)
    c  channels

The student is sampled as at inference (model.runtime.sampler): z_0 = pure noise at t_0 = 1, x0_j = student(z_j,
t_j), z_{j+1} = noise(x0_j, t_{j+1}). Backward simulation trains step k on exactly the z_k that this chain makes
(earlier steps without gradient), never on noised real data, so training and sampling see the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from model.config import ScheduleConfig
from model.schedule import add_noise

# x0 estimate of the student at its k-th timestep: (z (b n c), t (b,)) -> x0 (b n c)
X0Fn = Callable[[Tensor, Tensor], Tensor]


def randn_like_on(shape: Sequence[int], generator: torch.Generator, device: torch.device) -> Tensor:
    """Gaussian noise drawn on the CPU from `generator` (the same on every device), moved to `device`."""
    return torch.randn(tuple(shape), generator=generator).to(device)


def simulate_student_input(
    x0_fn: X0Fn,
    shape: Sequence[int],
    timesteps: Sequence[float],
    k: int,
    schedule: ScheduleConfig,
    generator: torch.Generator,
    device: torch.device,
    keep: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The student's input at its k-th timestep, made by its own chain from pure noise without gradient.

    Returns z_k (b n c) and t_k (b,). keep (b n 1) zeroes padded frames after every step, as training does.
    """
    if not 0 <= k < len(timesteps):
        raise ValueError(f"step index k must be in [0, {len(timesteps) - 1}], got {k}")
    b = shape[0]
    mask = keep if keep is not None else torch.ones((), device=device)

    def t_at(j: int) -> Tensor:
        return torch.full((b,), float(timesteps[j]), device=device)

    zeros = torch.zeros(tuple(shape), device=device)
    z = add_noise(zeros, randn_like_on(shape, generator, device), t_at(0), schedule) * mask  # (b n c)
    with torch.no_grad():
        for j in range(k):
            x0 = x0_fn(z, t_at(j)).float() * mask
            z = add_noise(x0, randn_like_on(shape, generator, device), t_at(j + 1), schedule) * mask
    return z, t_at(k)


def sample_dmd_t(
    batch_size: int, t_range: tuple[float, float], generator: torch.Generator, device: torch.device
) -> Tensor:
    """t ~ U(t_lo, t_hi) for the distribution-matching term. DMD2 clamps t to [0.02, 0.98] of its range: near 0 the
    two scores agree up to noise and the normalised difference is noise; near 1 the input carries no x0."""
    lo, hi = t_range
    return (lo + (hi - lo) * torch.rand((batch_size,), generator=generator)).to(device)  # (b,)


def dmd_gradient(p_real: Tensor, p_fake: Tensor, mask: Tensor) -> Tensor:
    """(p_real - p_fake) / mean |p_real| per sample, the mean taken over valid frames only; padding gets 0.

    p_* = x0 - x0_estimate_of_that_score (b n c); mask (b n)."""
    valid = mask[..., None].to(p_real.dtype)  # (b n 1)
    count = (valid.sum(dim=(1, 2)) * p_real.shape[-1]).clamp_min(1.0)  # (b,)
    scale = (p_real.abs() * valid).sum(dim=(1, 2)) / count  # (b,)
    grad = (p_real - p_fake) / scale.clamp_min(1e-8)[:, None, None]
    return torch.nan_to_num(grad * valid)


def dmd_loss(x0: Tensor, grad: Tensor, keep: Tensor) -> Tensor:
    """0.5 ||x0 - sg(x0 - grad)||^2 over valid entries: its gradient with respect to x0 is exactly `grad`/N."""
    n_valid = (keep.sum() * x0.shape[-1]).clamp_min(1.0)
    return 0.5 * (((x0 - (x0 - grad).detach()) ** 2) * keep).sum() / n_valid


def lsgan_generator_loss(logits_fake: Tensor) -> Tensor:
    return ((logits_fake.float() - 1.0) ** 2).mean()


def lsgan_discriminator_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    return (logits_fake.float() ** 2).mean() + ((logits_real.float() - 1.0) ** 2).mean()

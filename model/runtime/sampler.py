"""The few-step v-prediction sampler over `denoiser.onnx` (spec §1.10, seeded and batched).

    x_pred = 0
    for t in timesteps:                    # (1, .75, .5, .25) by default, the student's training steps
        eps   ~ N(0, 1) from the request's own generator
        x_t   = alpha(t) x_pred + sigma(t) eps
        v     = denoiser(x_t, mask, t, cross K/V, rope)
        x_pred = alpha(t) x_t - sigma(t) v

Legend: b = batch, n = latent frames (padded to the longest item), c = latent channels, L = DiT layers,
h = heads, r = reference frames, p = phoneme tokens, k = head dim.

Each request owns `np.random.default_rng(seed)` and draws (n_i, c) noise per step, so its audio does not
depend on which batch it lands in. Padded frames get zero noise and are masked out of attention.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model.config import ScheduleConfig
from model.rope import rope_angles
from model.runtime.graph import OnnxGraph
from model.schedule import add_noise, x0_from_v


@dataclass
class Conditioning:
    """The denoiser's cross-attention inputs for one batch (outputs of the condition encoder)."""

    k_ref: np.ndarray  # (L b h r k) float32
    v_ref: np.ndarray  # (L b h r k) float32
    ref_mask: np.ndarray  # (b r) bool
    k_text: np.ndarray  # (L b h p k) float32
    v_text: np.ndarray  # (L b h p k) float32
    phonemes_mask: np.ndarray  # (b p) bool


class Sampler:
    def __init__(
        self, denoiser: OnnxGraph, schedule: ScheduleConfig, latent_dim: int, rope_dim: int, rope_theta: float
    ) -> None:
        self.denoiser = denoiser
        self.schedule = schedule
        self.latent_dim = latent_dim
        self.rope_dim = rope_dim
        self.rope_theta = rope_theta

    def sample(
        self,
        cond: Conditioning,
        num_frames: Sequence[int],
        seeds: Sequence[int],
        timesteps: Sequence[float],
        step_ms: list[float] | None = None,
    ) -> np.ndarray:
        """Denoised latents (b n c) for a batch; item i is valid in its first num_frames[i] frames.

        step_ms, when given, receives the wall time of each denoiser call (appended, in step order).
        """
        batch = len(num_frames)
        if len(seeds) != batch or cond.ref_mask.shape[0] != batch:
            raise ValueError("sample: num_frames, seeds and the conditioning must have the same batch size")
        max_frames = max(num_frames)
        mask = np.arange(max_frames)[None, :] < np.asarray(num_frames)[:, None]  # (b n)
        rope = rope_angles(max_frames, self.rope_dim, self.rope_theta)  # (1 n rope_dim)
        generators = [np.random.default_rng(seed) for seed in seeds]
        x_pred = np.zeros((batch, max_frames, self.latent_dim), dtype=np.float32)  # (b n c)
        eps = np.zeros_like(x_pred)
        for t in timesteps:
            for i, (generator, frames) in enumerate(zip(generators, num_frames, strict=True)):
                eps[i, :frames] = generator.standard_normal((frames, self.latent_dim), dtype=np.float32)
            x_t = add_noise(x_pred, eps, float(t), self.schedule).astype(np.float32)  # (b n c)
            t_batch = np.full((batch,), t, dtype=np.float32)  # (b,) raw t, the graph clips (spec §1.5)
            started = time.perf_counter()
            v = self.denoiser.run(
                x_t,
                mask,
                t_batch,
                cond.k_ref,
                cond.v_ref,
                cond.ref_mask,
                cond.k_text,
                cond.v_text,
                cond.phonemes_mask,
                rope,
            )[0]  # (b n c)
            if step_ms is not None:
                step_ms.append((time.perf_counter() - started) * 1000.0)
            # Padded frames carry whatever the graph wrote there; zero them so they stay inert.
            x_pred = np.where(mask[..., None], x0_from_v(x_t, v, float(t), self.schedule), 0.0).astype(np.float32)
        return x_pred

"""The samplers over `denoiser.onnx` (spec §1.10, seeded and batched); the model's sidecar picks one.

`student` (the published, DMD2-distilled weights):

    x_pred = 0
    for t in timesteps:                    # (1, .75, .5, .25) by default, the student's training steps
        eps   ~ N(0, 1) from the request's own generator
        x_t   = alpha(t) x_pred + sigma(t) eps
        v     = denoiser(x_t, mask, t, cross K/V, rope)
        x_pred = alpha(t) x_t - sigma(t) v

`ddim` (a teacher that was never distilled, e.g. the bundled demo): x = sigma(1) eps, drawn once; then for
t_0 = 1 > t_1 > ... > t_N = 0, v = denoiser(x, t_i) and x = the deterministic DDIM step to t_{i+1}; the last
step returns the x0 estimate.

Either way, with `guidance_scale` != 1 each step runs the denoiser with the text and without it (every phoneme
masked out) and uses v_uncond + scale (v_cond - v_uncond): classifier-free guidance, one batch of 2b rows.

Legend: b = batch, n = latent frames (padded to the longest item), c = latent channels, L = DiT layers,
h = heads, r = reference frames, p = phoneme tokens, k = head dim.

Each request owns `np.random.default_rng(seed)` and draws (n_i, c) noise, so its audio does not depend on which
batch it lands in. Padded frames get zero noise and are masked out of attention.

What stays the same for every step of a batch (the cross K/V, the masks, the rope table) is placed with the
denoiser once per batch (`OnnxGraph.upload`: on a GPU, one host -> device copy under I/O binding) and bound by
reference at each step; only x_t and t travel per step (the update runs in numpy on the host).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from model.config import ScheduleConfig
from model.rope import rope_angles
from model.runtime.graph import OnnxGraph
from model.schedule import add_noise, ddim_step, x0_from_v


@dataclass
class Conditioning:
    """The denoiser's cross-attention inputs for one batch (outputs of the condition encoder)."""

    k_ref: np.ndarray  # (L b h r k) float32
    v_ref: np.ndarray  # (L b h r k) float32
    ref_mask: np.ndarray  # (b r) bool
    k_text: np.ndarray  # (L b h p k) float32
    v_text: np.ndarray  # (L b h p k) float32
    phonemes_mask: np.ndarray  # (b p) bool


@dataclass
class _StepInputs:
    """The denoiser inputs every step of a batch shares, as `OnnxGraph.upload` placed them (positions 1, 3-9)."""

    mask: Any  # (b n) bool
    k_ref: Any
    v_ref: Any
    ref_mask: Any
    k_text: Any
    v_text: Any
    phonemes_mask: Any
    rope: Any


@dataclass
class _BatchInputs:
    cond: _StepInputs | None = None  # unguided, or guided with a graph of batch 1 fixed
    uncond: _StepInputs | None = None  # guidance, graph with batch 1 fixed: a second call without the text
    both: _StepInputs | None = None  # guidance, batched: cond and uncond as one batch of 2b rows


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
        inputs = self._upload(cond, mask, rope)
        if self.schedule.sampler == "ddim":
            return self._sample_ddim(inputs, mask, generators, timesteps, step_ms)
        x_pred = np.zeros((batch, max_frames, self.latent_dim), dtype=np.float32)  # (b n c)
        for t in timesteps:
            eps = self._noise(generators, mask)  # (b n c)
            x_t = add_noise(x_pred, eps, float(t), self.schedule).astype(np.float32)  # (b n c)
            v = self._velocity(x_t, float(t), inputs, step_ms)  # (b n c)
            # Padded frames carry whatever the graph wrote there; zero them so they stay inert.
            x_pred = np.where(mask[..., None], x0_from_v(x_t, v, float(t), self.schedule), 0.0).astype(np.float32)
        return x_pred

    def _sample_ddim(
        self,
        inputs: _BatchInputs,
        mask: np.ndarray,
        generators: Sequence[np.random.Generator],
        timesteps: Sequence[float],
        step_ms: list[float] | None,
    ) -> np.ndarray:
        """timesteps: t_0 > ... > t_N = 0 (N + 1 values, N denoiser steps)."""
        if len(timesteps) < 2:
            raise ValueError("the DDIM sampler needs at least two timesteps (t_0 > ... > t_N)")
        eps = self._noise(generators, mask)  # (b n c)
        x: np.ndarray = add_noise(np.zeros_like(eps), eps, float(timesteps[0]), self.schedule).astype(
            np.float32
        )  # (b n c)
        for t, t_next in zip(timesteps[:-1], timesteps[1:], strict=True):
            v = self._velocity(x, float(t), inputs, step_ms)  # (b n c)
            if t_next <= 0.0:
                stepped = x0_from_v(x, v, float(t), self.schedule)
            else:
                stepped = ddim_step(x, v, float(t), float(t_next), self.schedule)
            x = np.where(mask[..., None], stepped, 0.0).astype(np.float32)
        return x

    def _noise(self, generators: Sequence[np.random.Generator], mask: np.ndarray) -> np.ndarray:
        """(b n c) standard normal noise, item i drawn from its own generator over its own frames only."""
        eps = np.zeros((mask.shape[0], mask.shape[1], self.latent_dim), dtype=np.float32)
        for i, (generator, frames) in enumerate(zip(generators, mask.sum(axis=1), strict=True)):
            eps[i, :frames] = generator.standard_normal((int(frames), self.latent_dim), dtype=np.float32)
        return eps

    def _upload(self, cond: Conditioning, mask: np.ndarray, rope: np.ndarray) -> _BatchInputs:
        """The inputs every step shares, placed with the denoiser once for the whole batch."""
        up = self.denoiser.upload
        guided = self.schedule.guidance_scale != 1.0
        if guided and self.denoiser.accepts_batch:  # one call per step: cond and uncond rows as one batch
            both = _stack(cond, replace(cond, phonemes_mask=np.zeros_like(cond.phonemes_mask)))
            mask = np.concatenate((mask, mask))
            return _BatchInputs(both=self._upload_step_inputs(both, mask, rope))
        conditional = self._upload_step_inputs(cond, mask, rope)
        if not guided:
            return _BatchInputs(cond=conditional)
        # A graph with batch 1 fixed: two calls per step that differ only in the phoneme mask.
        no_text = up(8, np.zeros_like(cond.phonemes_mask))
        return _BatchInputs(cond=conditional, uncond=replace(conditional, phonemes_mask=no_text))

    def _upload_step_inputs(self, cond: Conditioning, mask: np.ndarray, rope: np.ndarray) -> _StepInputs:
        up = self.denoiser.upload
        return _StepInputs(
            mask=up(1, mask),
            k_ref=up(3, cond.k_ref),
            v_ref=up(4, cond.v_ref),
            ref_mask=up(5, cond.ref_mask),
            k_text=up(6, cond.k_text),
            v_text=up(7, cond.v_text),
            phonemes_mask=up(8, cond.phonemes_mask),
            rope=up(9, rope),
        )

    def _velocity(self, x_t: np.ndarray, t: float, inputs: _BatchInputs, step_ms: list[float] | None) -> np.ndarray:
        """v (b n c) at t, guided when the schedule asks for it; appends the step's wall time to step_ms."""
        batch = x_t.shape[0]
        started = time.perf_counter()
        scale = self.schedule.guidance_scale
        if inputs.both is not None:
            both = self._run(np.concatenate((x_t, x_t)), t, inputs.both)
            v_cond, v_uncond = both[:batch], both[batch:]  # (b n c) each
            v = v_uncond + scale * (v_cond - v_uncond)
        elif inputs.cond is None:
            raise ValueError("the sampler's batch inputs hold neither a conditional nor a stacked batch")
        elif inputs.uncond is not None:
            v_cond = self._run(x_t, t, inputs.cond)
            v_uncond = self._run(x_t, t, inputs.uncond)
            v = v_uncond + scale * (v_cond - v_uncond)
        else:
            v = self._run(x_t, t, inputs.cond)
        if step_ms is not None:
            step_ms.append((time.perf_counter() - started) * 1000.0)
        return np.asarray(v, dtype=np.float32)

    def _run(self, x_t: np.ndarray, t: float, inputs: _StepInputs) -> np.ndarray:
        t_batch = np.full((x_t.shape[0],), t, dtype=np.float32)  # (b,) raw t, the graph clips (spec §1.5)
        return self.denoiser.run(
            x_t,
            inputs.mask,
            t_batch,
            inputs.k_ref,
            inputs.v_ref,
            inputs.ref_mask,
            inputs.k_text,
            inputs.v_text,
            inputs.phonemes_mask,
            inputs.rope,
        )[0]  # (b n c)


def _stack(first: Conditioning, second: Conditioning) -> Conditioning:
    """The two conditionings as one batch of 2b rows (the cross K/V carry the batch on axis 1)."""
    return Conditioning(
        k_ref=np.concatenate((first.k_ref, second.k_ref), axis=1),
        v_ref=np.concatenate((first.v_ref, second.v_ref), axis=1),
        ref_mask=np.concatenate((first.ref_mask, second.ref_mask)),
        k_text=np.concatenate((first.k_text, second.k_text), axis=1),
        v_text=np.concatenate((first.v_text, second.v_text), axis=1),
        phonemes_mask=np.concatenate((first.phonemes_mask, second.phonemes_mask)),
    )

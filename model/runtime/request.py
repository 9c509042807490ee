"""A synthesis request, its result and its checks: what a caller may ask for, refused with a named InputError.

`RequestChecker.prepare` turns a `SynthesisRequest` into the arrays the graphs take (a `PreparedRequest`), or
raises InputError naming the field (duration | text | audio | steps | schedule | seed), before any model work.

Legend: p = phoneme tokens, r = reference frames, c = latent channels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from model.config import ModelConfig
from model.errors import InputError
from model.runtime.cache import content_key
from model.runtime.limits import RuntimeLimits
from model.schedule import teacher_timesteps
from model.schedule import timesteps as timestep_table_values

TIMESTEP_TABLES: tuple[str, ...] = ("trained", "original")


@dataclass(frozen=True)
class SynthesisRequest:
    token_ids: tuple[int, ...] | np.ndarray  # (p,) phoneme ids from model.text; 0 is padding
    ref_latents: np.ndarray  # (r c) float32 reference latents (see Synthesizer.encode_reference)
    duration_s: float
    seed: int
    num_steps: int | None = None  # None: the model's own default (4 for the published student)
    # Student sampler only: "trained" (1, .75, .5, .25) | "original" (linspace(1, 0, 4)); DDIM ignores it.
    timestep_table: str = "trained"


@dataclass(frozen=True)
class SynthesisResult:
    audio: np.ndarray  # (num_frames * hop,) float32
    num_frames: int
    seed: int
    sample_rate_hz: int

    @property
    def duration_s(self) -> float:
        return float(self.audio.shape[0] / self.sample_rate_hz)


@dataclass
class StageTimings:
    """Wall time per stage of `synthesize_batch`, summed over the batch's groups (filled when passed in)."""

    condition_ms: float = 0.0
    denoise_step_ms: list[float] = field(default_factory=list)
    decode_ms: float = 0.0

    def add_steps(self, step_ms: Sequence[float]) -> None:
        for i, value in enumerate(step_ms):
            if i < len(self.denoise_step_ms):
                self.denoise_step_ms[i] += value
            else:
                self.denoise_step_ms.append(value)


def frames_for_duration(duration_s: float, frame_rate_hz: float) -> int:
    """ceil(duration x frame rate), at least 1: 3.0 s -> 23 frames at 7.5 fps (spec §1.7, as the samples)."""
    # The epsilon keeps float noise from adding a frame: 0.4 * 7.5 = 3.0000000000000004 is 3 frames.
    return max(1, math.ceil(duration_s * frame_rate_hz - 1e-9))


@dataclass(frozen=True)
class PreparedRequest:
    """A validated request in the arrays the graphs take."""

    token_ids: np.ndarray  # (p,) int64
    ref_latents: np.ndarray  # (r c) float32
    ref_key: str  # content hash of ref_latents: the key of the voice's cached K/V
    num_frames: int
    seed: int
    timesteps: tuple[float, ...]


class RequestChecker:
    """Checks requests against the runtime limits and the model's own bounds (vocabulary, positions, latents)."""

    def __init__(self, config: ModelConfig, limits: RuntimeLimits, latent_dim: int) -> None:
        self.config = config
        self.limits = limits
        self.latent_dim = latent_dim

    @property
    def frame_rate_hz(self) -> float:
        return self.config.codec.frame_rate_hz

    @property
    def max_tokens(self) -> int:
        return min(self.limits.max_tokens, self.config.text.max_positions)

    @property
    def max_reference_frames(self) -> int:
        return min(
            frames_for_duration(self.limits.max_reference_s, self.frame_rate_hz), self.config.style.max_positions
        )

    def prepare(self, request: SynthesisRequest) -> PreparedRequest:
        limits = self.limits
        duration_s = request.duration_s
        if isinstance(duration_s, bool) or not isinstance(duration_s, int | float | np.integer | np.floating):
            raise InputError("duration must be a number of seconds", field="duration", code="duration_invalid")
        if not math.isfinite(duration_s) or not limits.min_duration_s <= duration_s <= limits.max_duration_s:
            raise InputError(
                f"duration must be between {limits.min_duration_s:g} and {limits.max_duration_s:g} seconds, "
                f"got {duration_s!r}",
                field="duration",
                code="duration_out_of_range",
            )
        steps = request.num_steps if request.num_steps is not None else self.config.schedule.num_steps
        if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or not 1 <= steps <= limits.max_steps:
            raise InputError(
                f"steps must be an integer between 1 and {limits.max_steps}, got {steps!r}",
                field="steps",
                code="steps_out_of_range",
            )
        if request.timestep_table not in TIMESTEP_TABLES:
            raise InputError(
                f"schedule must be one of {', '.join(TIMESTEP_TABLES)}, got {request.timestep_table!r}",
                field="schedule",
                code="schedule_unknown",
            )
        seed = request.seed
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {seed!r}", field="seed", code="seed_invalid")
        token_ids = self.check_tokens(request.token_ids)
        ref_latents = self.check_ref_latents(request.ref_latents)
        return PreparedRequest(
            token_ids=token_ids,
            ref_latents=ref_latents,
            ref_key=content_key(ref_latents),
            num_frames=frames_for_duration(float(duration_s), self.frame_rate_hz),
            seed=int(seed),
            timesteps=self.timesteps(request.timestep_table, int(steps)),
        )

    def timesteps(self, table: str, steps: int) -> tuple[float, ...]:
        if self.config.schedule.sampler == "ddim":
            return teacher_timesteps(steps)  # steps + 1 values, from 1 down to 0
        return timestep_table_values(table, steps, trained=self.config.schedule.student_timesteps)

    def check_tokens(self, token_ids: tuple[int, ...] | np.ndarray) -> np.ndarray:
        ids = np.asarray(token_ids)
        if ids.size == 0:
            raise InputError("text gives no phoneme tokens; write some words", field="text", code="text_empty")
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise InputError("token ids must be a flat sequence of integers", field="text", code="text_invalid")
        if ids.shape[0] > self.max_tokens:
            raise InputError(
                f"text is too long: {ids.shape[0]} phoneme tokens, the limit is {self.max_tokens}",
                field="text",
                code="text_too_long",
            )
        vocab_size = self.config.text.vocab_size
        if int(ids.min()) < 0 or int(ids.max()) >= vocab_size:
            raise InputError(
                f"token ids must lie in [0, {vocab_size}); got {int(ids.min())}..{int(ids.max())}",
                field="text",
                code="text_invalid",
            )
        return ids.astype(np.int64)

    def check_ref_latents(self, ref_latents: np.ndarray) -> np.ndarray:
        latents = np.asarray(ref_latents)
        if latents.ndim != 2 or latents.shape[1] != self.latent_dim or latents.dtype.kind != "f":
            raise InputError(
                f"reference latents must be a float array of shape (frames, {self.latent_dim}), "
                f"got {latents.dtype} {latents.shape}",
                field="audio",
                code="reference_invalid",
            )
        if latents.shape[0] == 0:
            raise InputError("reference has no frames", field="audio", code="audio_empty")
        if latents.shape[0] > self.max_reference_frames:
            raise InputError(
                f"reference is {latents.shape[0]} frames long; the limit is {self.max_reference_frames} "
                f"({self.limits.max_reference_s:g} s)",
                field="audio",
                code="audio_too_long",
            )
        if not np.isfinite(latents).all():
            raise InputError("reference latents contain NaN or infinity", field="audio", code="reference_invalid")
        return np.ascontiguousarray(latents, dtype=np.float32)

"""The steps every speech route shares: check the text, get the reference latents, queue, encode the audio.

Routes stay thin: they read their wire format (multipart or OpenAI JSON), then call `SynthesisPipeline`.
Every blocking step (espeak-ng, decoding, the codec encoder, audio encoding) runs in a worker thread; the
model call itself runs in the batching pool. Every user mistake raises `InputError` or a `ServiceError`.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import numpy as np
from fastapi import Request
from fastapi.responses import Response

from model.errors import InputError
from model.runtime.audio import decode_reference, encode_audio
from model.runtime.limits import RuntimeLimits
from model.runtime.synthesizer import SynthesisRequest, Synthesizer
from model.text.tokens import estimate_duration_s, tokenize
from model.text.vocab import TAGS, tag_id
from service.batching.pool import WorkerPool
from service.metrics import ServiceMetrics
from service.settings import Settings

T = TypeVar("T")

_TAG_RE = re.compile(r"\[(\w+)\]")
MAX_SEED = 2**32 - 1
AUDIO_MEDIA_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "pcm": "audio/pcm",
}
BINARY_SCHEMA: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
# Response headers on every audio answer; browsers need them listed in Access-Control-Expose-Headers.
AUDIO_HEADERS: tuple[str, ...] = (
    "X-Smalltts-Duration-S",
    "X-Smalltts-Duration-Estimated",
    "X-Smalltts-Frames",
    "X-Smalltts-Seed",
    "X-Smalltts-Steps",
    "X-Smalltts-Model-Id",
    "X-Smalltts-Trained",
    "X-Smalltts-Processing-Ms",
    "X-Smalltts-Batch-Size",
    "X-Smalltts-Queue-Wait-Ms",
    "X-Smalltts-Warnings",
    "X-Request-Id",
)


@dataclass(frozen=True)
class ServiceLimits:
    """The limits users see: the settings, narrowed to what the loaded model accepts."""

    max_text_chars: int
    max_tokens: int
    max_upload_bytes: int
    min_duration_s: float
    max_duration_s: float
    min_reference_s: float
    max_reference_s: float
    silence_peak: float
    max_steps: int
    default_steps: int

    @classmethod
    def combine(
        cls, settings: Settings, runtime: RuntimeLimits, max_tokens: int, model_default_steps: int
    ) -> ServiceLimits:
        """Raises ValueError (naming the setting) when the default step count is above the allowed maximum."""
        max_steps = min(settings.max_steps, runtime.max_steps)
        default_steps = settings.default_steps if settings.default_steps is not None else model_default_steps
        if default_steps > max_steps:
            source = "SMALLTTS_DEFAULT_STEPS" if settings.default_steps is not None else "the model's default"
            raise ValueError(
                f"{source} is {default_steps} sampler steps, above the maximum {max_steps}; "
                "raise SMALLTTS_MAX_STEPS or lower SMALLTTS_DEFAULT_STEPS"
            )
        return cls(
            max_text_chars=settings.max_text_chars,
            max_tokens=max_tokens,
            max_upload_bytes=settings.max_upload_bytes,
            min_duration_s=max(settings.min_duration_s, runtime.min_duration_s),
            max_duration_s=min(settings.max_duration_s, runtime.max_duration_s),
            min_reference_s=max(settings.min_reference_s, runtime.min_reference_s),
            max_reference_s=min(settings.max_reference_s, runtime.max_reference_s),
            silence_peak=max(settings.silence_threshold, runtime.silence_peak),
            max_steps=max_steps,
            default_steps=default_steps,
        )

    def reference_limits(self) -> RuntimeLimits:
        return RuntimeLimits(
            min_reference_s=max(self.min_reference_s, 1e-3),
            max_reference_s=self.max_reference_s,
            silence_peak=self.silence_peak,
        )


@dataclass(frozen=True)
class PreparedText:
    token_ids: tuple[int, ...]
    warnings: tuple[str, ...]
    estimated_duration_s: float


@dataclass(frozen=True)
class SpeechJob:
    """One validated synthesis, ready to queue."""

    text: PreparedText
    ref_latents: np.ndarray  # (r c)
    duration_s: float
    duration_estimated: bool
    seed: int
    steps: int


class SynthesisPipeline:
    """Shared by /synthesize and /v1/audio/speech; created by the lifespan around the loaded model."""

    def __init__(
        self,
        synthesizer: Synthesizer,
        pool: WorkerPool,
        limits: ServiceLimits,
        metrics: ServiceMetrics,
        *,
        strict_tags: bool,
    ) -> None:
        self.synthesizer = synthesizer
        self.pool = pool
        self.limits = limits
        self.metrics = metrics
        self.strict_tags = strict_tags

    async def _timed(self, stage: str, fn: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        finally:
            self.metrics.observe_stage(stage, time.perf_counter() - started)

    # --- inputs ---------------------------------------------------------------------------------------

    async def prepare_text(self, text: str | None, *, field: str = "text") -> PreparedText:
        """Checks length and tags, then tokenizes; raises InputError naming `field` (the route's name for it)."""
        try:
            return await self._prepare_text(text)
        except InputError as exc:
            exc.field = field  # /v1/audio/speech calls it "input"
            raise

    async def _prepare_text(self, text: str | None) -> PreparedText:
        if text is None:
            raise InputError("text is required", field="text", code="text_missing")
        if not text.strip():
            raise InputError("text is empty", field="text", code="text_empty")
        if len(text) > self.limits.max_text_chars:
            raise InputError(
                f"text has {len(text)} characters; the limit is {self.limits.max_text_chars}",
                field="text",
                code="text_too_long",
            )
        if "\x00" in text:
            raise InputError("text contains a NUL character", field="text", code="text_invalid")
        unknown = sorted({label for label in _TAG_RE.findall(text) if tag_id(label) is None})
        if unknown and self.strict_tags:
            raise InputError(
                f"unknown tags {', '.join(f'[{label}]' for label in unknown)}; known tags: "
                f"{', '.join(f'[{tag}]' for tag in TAGS)}",
                field="text",
                code="text_unknown_tag",
            )
        tokens = await self._timed("tokenize", _tokenize, text, self.limits.max_tokens)
        return PreparedText(
            token_ids=tuple(tokens.ids),
            warnings=tuple(tokens.warnings),
            estimated_duration_s=float(estimate_duration_s(tokens)),
        )

    async def latents_from_upload(self, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Reference file bytes -> (decoded audio (n,), latents (r c)); raises InputError(field="audio")."""
        if len(data) > self.limits.max_upload_bytes:
            raise InputError(
                f"reference file is {len(data)} bytes; the limit is {self.limits.max_upload_bytes} bytes",
                field="audio",
                code="audio_too_large",
                status=413,
            )
        audio = await self._timed(
            "decode_reference",
            decode_reference,
            data,
            self.synthesizer.sample_rate_hz,
            self.limits.reference_limits(),
        )
        latents = await self._timed("encode_reference", self.synthesizer.encode_reference, audio)
        return audio, latents

    def resolve_duration(
        self, duration_s: float | None, text: PreparedText, *, speed: float = 1.0
    ) -> tuple[float, bool]:
        """The requested duration checked against the limits, or the estimate / speed (clamped) when none is given.

        Returns (duration_s, estimated).
        """
        if duration_s is None:
            estimate = text.estimated_duration_s / speed
            estimate = min(max(estimate, self.limits.min_duration_s), self.limits.max_duration_s)
            return round(estimate, 3), True
        if not math.isfinite(duration_s):
            raise InputError(
                f"duration must be a finite number of seconds, got {duration_s!r}",
                field="duration",
                code="duration_not_finite",
            )
        if not self.limits.min_duration_s <= duration_s <= self.limits.max_duration_s:
            raise InputError(
                f"duration must be between {self.limits.min_duration_s:g} and {self.limits.max_duration_s:g} "
                f"seconds, got {duration_s:g}",
                field="duration",
                code="duration_out_of_range",
            )
        return float(duration_s), False

    def resolve_steps(self, steps: int | None) -> int:
        if steps is None:
            return self.limits.default_steps
        if not 1 <= steps <= self.limits.max_steps:
            raise InputError(
                f"steps must be between 1 and {self.limits.max_steps}, got {steps}",
                field="steps",
                code="steps_out_of_range",
            )
        return steps

    @staticmethod
    def resolve_seed(seed: int | None) -> int:
        if seed is None:
            return secrets.randbelow(2**31)
        if not 0 <= seed <= MAX_SEED:
            raise InputError(
                f"seed must be between 0 and {MAX_SEED}, got {seed}", field="seed", code="seed_out_of_range"
            )
        return seed

    # --- run ------------------------------------------------------------------------------------------

    async def run(self, job: SpeechJob, *, request: Request, arrival_time: float) -> SpeechAudio:
        """Queues the job, waits for its batch and returns the audio with the facts for the headers."""
        synthesis = SynthesisRequest(
            token_ids=job.text.token_ids,
            ref_latents=job.ref_latents,
            duration_s=job.duration_s,
            seed=job.seed,
            num_steps=job.steps,
        )
        self.synthesizer.validate(synthesis)  # a user mistake fails here, never inside a shared batch
        done = await self.pool.submit(synthesis, arrival_time=arrival_time)
        self.metrics.observe_stage("queue_wait", done.queue_wait_s)
        result = done.result
        audio_s = result.audio.shape[0] / result.sample_rate_hz
        self.metrics.audio_seconds.inc(audio_s)
        request.state.batch_size = done.batch_size
        request.state.queue_wait_ms = round(done.queue_wait_s * 1000, 1)
        request.state.audio_s = round(audio_s, 3)
        return SpeechAudio(
            job=job,
            audio=result.audio,
            num_frames=result.num_frames,
            seed=result.seed,
            sample_rate_hz=result.sample_rate_hz,
            batch_size=done.batch_size,
            queue_wait_s=done.queue_wait_s,
        )

    async def respond(
        self, speech: SpeechAudio, audio_format: str, *, arrival_time: float, encode: Callable[..., bytes] | None = None
    ) -> Response:
        """Encodes the audio (wav/flac/ogg, or through `encode` for other formats) with the facts as headers."""
        encoder = encode if encode is not None else encode_audio
        body = await self._timed("encode_audio", encoder, speech.audio, speech.sample_rate_hz, audio_format)
        headers = {
            "X-Smalltts-Duration-S": f"{speech.job.duration_s:.3f}",
            "X-Smalltts-Duration-Estimated": str(speech.job.duration_estimated).lower(),
            "X-Smalltts-Frames": str(speech.num_frames),
            "X-Smalltts-Seed": str(speech.seed),
            "X-Smalltts-Steps": str(speech.job.steps),
            "X-Smalltts-Model-Id": _header_text(self.synthesizer.model_id),
            "X-Smalltts-Trained": str(bool(self.synthesizer.trained)).lower(),
            "X-Smalltts-Processing-Ms": f"{(time.monotonic() - arrival_time) * 1000:.1f}",
            "X-Smalltts-Batch-Size": str(speech.batch_size),
            "X-Smalltts-Queue-Wait-Ms": f"{speech.queue_wait_s * 1000:.1f}",
        }
        if speech.job.text.warnings:
            headers["X-Smalltts-Warnings"] = _header_text("; ".join(speech.job.text.warnings))
        return Response(content=body, media_type=AUDIO_MEDIA_TYPES[audio_format], headers=headers)


@dataclass(frozen=True)
class SpeechAudio:
    job: SpeechJob
    audio: np.ndarray  # (n,) float32
    num_frames: int
    seed: int
    sample_rate_hz: int
    batch_size: int
    queue_wait_s: float


def _tokenize(text: str, max_tokens: int) -> Any:
    return tokenize(text, max_tokens=max_tokens)


def _header_text(text: str, limit: int = 1024) -> str:
    # Header values must be latin-1 and one line; keep them short and printable.
    cleaned = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)
    return cleaned[:limit]

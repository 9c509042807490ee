"""Batched text-to-speech over the four ONNX graphs: condition encoder -> few-step sampler -> codec decoder.

    synth = Synthesizer.load("path/to/model")            # dmd/*.onnx + codec/*.onnx (see model.runtime.assets)
    latents = synth.encode_reference(audio_24k)           # (r c), cached by content hash
    [result] = synth.synthesize_batch([SynthesisRequest(token_ids, latents, duration_s=3.0, seed=1)])
    result.audio                                          # (23 * 3200,) float32 at 24 kHz

Legend: b = batch, r = reference frames, p = phoneme tokens, n = latent frames, c = latent channels,
L = DiT layers, h = heads, k = head dim.

A batch gives the same audio as its requests one by one: references, phonemes and frames are padded and
masked, every request draws noise from its own seeded generator, and each item is decoded from its own frames
only (a convolutional decoder would otherwise see the padding). Graphs exported with a fixed batch of 1 are
run item by item. The condition encoder's reference outputs (the per-layer cross-attention K/V of a voice) are
cached by the hash of the reference latents, so a returning voice skips the style encoder.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from model.config import CodecConfig, ModelConfig, preset_config, read_sidecar
from model.errors import InputError
from model.runtime.assets import (
    CODEC_DECODER,
    CODEC_ENCODER,
    CONDITION_ENCODER,
    DENOISER,
    PUBLISHED_REPO,
    require_model_dir,
)
from model.runtime.codec import CodecDecoder, CodecEncoder
from model.runtime.graph import OnnxGraph
from model.runtime.limits import RuntimeLimits
from model.runtime.sampler import Conditioning, Sampler
from model.schedule import teacher_timesteps
from model.schedule import timesteps as timestep_table_values

logger = logging.getLogger(__name__)

PUBLISHED_MODEL_ID = PUBLISHED_REPO
TIMESTEP_TABLES: tuple[str, ...] = ("trained", "original")

# Batch axis of every input (spec §1.4, §1.5): the cross K/V are (L b h r k); the rope table has no batch.
_CONDITION_BATCH_AXES: tuple[int | None, ...] = (0, 0, 0, 0)
_DENOISER_BATCH_AXES: tuple[int | None, ...] = (0, 0, 0, 1, 1, 0, 1, 1, 0, None)


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
class _Prepared:
    """A validated request in the arrays the graphs take."""

    token_ids: np.ndarray  # (p,) int64
    ref_latents: np.ndarray  # (r c) float32
    ref_key: str
    num_frames: int
    seed: int
    timesteps: tuple[float, ...]


V = TypeVar("V")


class _LruCache(Generic[V]):
    """A thread-safe LRU map bounded by the total bytes of its values."""

    def __init__(self, max_bytes: int, size_of: Callable[[V], int]) -> None:
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._items: OrderedDict[str, V] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: V) -> None:
        size = self._size_of(value)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                self._bytes -= self._size_of(self._items.pop(key))
            self._items[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= self._size_of(evicted)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)


_RefKV = tuple[np.ndarray, np.ndarray, np.ndarray]  # k_ref (L 1 h r k), v_ref (L 1 h r k), ref_mask (1 r)


def _content_key(array: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


class Synthesizer:
    """Text + reference voice -> audio with the ONNX graphs of one model folder."""

    def __init__(
        self,
        *,
        model_dir: Path,
        config: ModelConfig,
        trained: bool,
        model_id: str,
        condition_encoder: OnnxGraph,
        denoiser: OnnxGraph,
        codec_encoder: OnnxGraph,
        codec_decoder: OnnxGraph,
        limits: RuntimeLimits | None = None,
        cache_mb: int = 256,
    ) -> None:
        self.model_dir = model_dir
        self.config = config
        self.trained = trained
        self.model_id = model_id
        self.limits = limits or RuntimeLimits()
        self._condition_encoder = condition_encoder
        self._denoiser = denoiser
        self._codec_graphs = (codec_encoder, codec_decoder)
        self.latent_dim = denoiser.fixed_dim(0, 2) or config.latent_dim
        rope_dim = denoiser.fixed_dim(9, 2) or config.dit.rope_dim
        if self.latent_dim != config.latent_dim:
            raise ValueError(
                f"{model_dir}: denoiser latents are {self.latent_dim}-dim, config says {config.latent_dim}"
            )
        self._encoder = CodecEncoder(codec_encoder, config.codec.hop_samples)
        self._decoder = CodecDecoder(codec_decoder, config.codec.hop_samples)
        self._sampler = Sampler(denoiser, config.schedule, self.latent_dim, rope_dim, config.dit.rope_theta)
        cache_bytes = cache_mb * 1024 * 1024
        self._latents_cache: _LruCache[np.ndarray] = _LruCache(cache_bytes // 8, lambda a: a.nbytes)
        self._ref_kv_cache: _LruCache[_RefKV] = _LruCache(cache_bytes, lambda kv: sum(a.nbytes for a in kv))

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        providers: Sequence[str] | None = None,
        *,
        limits: RuntimeLimits | None = None,
        intra_op_threads: int = 0,
        cache_mb: int = 256,
    ) -> Synthesizer:
        """Opens the four graphs of a model folder (dmd/ and codec/ as in the published repo).

        Graphs with a sidecar (our exports) say their config and whether they are trained; the published graphs
        have none and are the `full` preset with the VibeVoice codec, trained.
        """
        model_dir = Path(model_dir)
        require_model_dir(model_dir)  # names every missing or truncated file
        config, trained, model_id = _read_model_facts(model_dir)

        def open_graph(name: str, batch_axes: Sequence[int | None] | None = None) -> OnnxGraph:
            return OnnxGraph(
                model_dir / name, providers=providers, intra_op_threads=intra_op_threads, batch_axes=batch_axes
            )

        return cls(
            model_dir=model_dir,
            config=config,
            trained=trained,
            model_id=model_id,
            condition_encoder=open_graph(CONDITION_ENCODER, _CONDITION_BATCH_AXES),
            denoiser=open_graph(DENOISER, _DENOISER_BATCH_AXES),
            codec_encoder=open_graph(CODEC_ENCODER),
            codec_decoder=open_graph(CODEC_DECODER),
            limits=limits,
            cache_mb=cache_mb,
        )

    # --- facts --------------------------------------------------------------------------------------------

    @property
    def sample_rate_hz(self) -> int:
        return self.config.codec.sample_rate_hz

    @property
    def hop_samples(self) -> int:
        return self.config.codec.hop_samples

    @property
    def frame_rate_hz(self) -> float:
        return self.config.codec.frame_rate_hz

    @property
    def providers(self) -> list[str]:
        return list(self._denoiser.providers)

    @property
    def accepts_batch(self) -> bool:
        """Whether the condition encoder and the denoiser run a batch > 1 in one call."""
        return self._condition_encoder.accepts_batch and self._denoiser.accepts_batch

    @property
    def num_parameters(self) -> int:
        """Parameters of the TTS model (condition encoder + denoiser), counted from the ONNX initializers."""
        return self._condition_encoder.num_parameters + self._denoiser.num_parameters

    @property
    def codec_num_parameters(self) -> int:
        return sum(graph.num_parameters for graph in self._codec_graphs)

    @property
    def sampler(self) -> str:
        """ "student" (re-noising few-step loop) or "ddim" (many-step teacher), from the model's sidecar."""
        return self.config.schedule.sampler

    @property
    def default_steps(self) -> int:
        """Denoiser steps of a request that does not say (the model's own number; 4 for the published weights)."""
        return self.config.schedule.num_steps

    @property
    def max_tokens(self) -> int:
        return min(self.limits.max_tokens, self.config.text.max_positions)

    @property
    def max_reference_frames(self) -> int:
        return min(
            frames_for_duration(self.limits.max_reference_s, self.frame_rate_hz), self.config.style.max_positions
        )

    @property
    def performs_tags(self) -> bool:
        """False for the bundled demo preset: it only ever heard espeak-ng, which has no laughs or sighs, so a
        tag is tokenized and spoken past, not performed (the published weights perform them)."""
        return self.config.preset != "demo"

    def summary(self) -> dict[str, Any]:
        """What `smalltts info` shows: plain JSON-able facts about the loaded model."""
        return {
            "model_id": self.model_id,
            "model_dir": str(self.model_dir),
            "preset": self.config.preset,
            "trained": self.trained,
            "num_parameters": self.num_parameters,
            "codec_num_parameters": self.codec_num_parameters,
            "codec": self.config.codec.kind,
            "sample_rate_hz": self.sample_rate_hz,
            "hop_samples": self.hop_samples,
            "frame_rate_hz": self.frame_rate_hz,
            "latent_dim": self.latent_dim,
            "sampler": self.sampler,
            "default_steps": self.default_steps,
            "guidance_scale": self.config.schedule.guidance_scale,
            "student_timesteps": self.config.schedule.student_timesteps,
            "performs_tags": self.performs_tags,
            "providers": self.providers,
            "accepts_batch": self.accepts_batch,
            "decoder_accepts_batch": self._decoder.accepts_batch,
            "limits": {
                "min_duration_s": self.limits.min_duration_s,
                "max_duration_s": self.limits.max_duration_s,
                "max_tokens": self.max_tokens,
                "min_reference_s": self.limits.min_reference_s,
                "max_reference_s": self.limits.max_reference_s,
                "max_steps": self.limits.max_steps,
            },
        }

    def clear_caches(self) -> None:
        self._latents_cache.clear()
        self._ref_kv_cache.clear()

    # --- reference ----------------------------------------------------------------------------------------

    def encode_reference(self, audio: np.ndarray) -> np.ndarray:
        """(n,) mono float32 audio at the codec rate -> (r c) reference latents, cached by content hash."""
        audio = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))
        if audio.shape[0] == 0:
            raise InputError("reference audio has no samples", field="audio", code="audio_empty")
        max_samples = self.max_reference_frames * self.hop_samples
        if audio.shape[0] > max_samples:
            raise InputError(
                f"reference audio is {audio.shape[0] / self.sample_rate_hz:.1f} s long; "
                f"the limit is {self.limits.max_reference_s:g} s",
                field="audio",
                code="audio_too_long",
            )
        key = _content_key(audio)
        latents = self._latents_cache.get(key)
        if latents is None:
            latents = self._encoder.encode(audio)  # (r c)
            self._latents_cache.put(key, latents)
        return latents.copy()

    # --- requests -----------------------------------------------------------------------------------------

    def validate(self, request: SynthesisRequest) -> None:
        """Raises InputError (field duration | text | audio | steps | schedule | seed) for an unusable request."""
        self._prepare(request)

    def num_frames(self, duration_s: float) -> int:
        return frames_for_duration(duration_s, self.frame_rate_hz)

    def _prepare(self, request: SynthesisRequest) -> _Prepared:
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
        steps = request.num_steps if request.num_steps is not None else self.default_steps
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
        token_ids = self._check_tokens(request.token_ids)
        ref_latents = self._check_ref_latents(request.ref_latents)
        return _Prepared(
            token_ids=token_ids,
            ref_latents=ref_latents,
            ref_key=_content_key(ref_latents),
            num_frames=self.num_frames(float(duration_s)),
            seed=int(seed),
            timesteps=self._timesteps(request.timestep_table, int(steps)),
        )

    def _timesteps(self, table: str, steps: int) -> tuple[float, ...]:
        if self.sampler == "ddim":
            return teacher_timesteps(steps)  # steps + 1 values, from 1 down to 0
        return timestep_table_values(table, steps, trained=self.config.schedule.student_timesteps)

    def _check_tokens(self, token_ids: tuple[int, ...] | np.ndarray) -> np.ndarray:
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

    def _check_ref_latents(self, ref_latents: np.ndarray) -> np.ndarray:
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

    # --- synthesis ----------------------------------------------------------------------------------------

    def synthesize_batch(
        self, requests: Sequence[SynthesisRequest], timings: StageTimings | None = None
    ) -> list[SynthesisResult]:
        """Synthesizes every request; result i belongs to request i. Raises InputError before any work."""
        prepared = [self._prepare(request) for request in requests]
        results: list[SynthesisResult | None] = [None] * len(prepared)
        for group in self._groups(prepared):
            items = [prepared[i] for i in group]
            cond = self._condition(items, timings)
            step_ms: list[float] = []
            frames = [item.num_frames for item in items]
            latents = self._sampler.sample(
                cond, frames, [item.seed for item in items], items[0].timesteps, step_ms
            )  # (b n c)
            if timings is not None:
                timings.add_steps(step_ms)
            audio = self._decode(latents, frames, timings)
            for i, item, item_audio in zip(group, items, audio, strict=True):
                results[i] = SynthesisResult(
                    audio=item_audio, num_frames=item.num_frames, seed=item.seed, sample_rate_hz=self.sample_rate_hz
                )
        return [result for result in results if result is not None]

    def _groups(self, prepared: Sequence[_Prepared]) -> list[list[int]]:
        """Indices that share one sampler loop: same timesteps; one by one when a graph has batch 1 fixed."""
        if not self.accepts_batch:
            return [[i] for i in range(len(prepared))]
        groups: dict[tuple[float, ...], list[int]] = {}
        for i, item in enumerate(prepared):
            groups.setdefault(item.timesteps, []).append(i)
        return list(groups.values())

    def _condition(self, items: Sequence[_Prepared], timings: StageTimings | None) -> Conditioning:
        """Runs the condition encoder once for the batch, reusing cached reference K/V where it can."""
        started = time.perf_counter()
        cached = [self._ref_kv_cache.get(item.ref_key) for item in items]
        # A voice whose K/V are cached still needs the text outputs; the text path does not look at the
        # reference (spec §1.4), so a one-frame dummy keeps the style encoder's work to nothing.
        dummy = np.zeros((1, self.latent_dim), dtype=np.float32)
        refs = [item.ref_latents if hit is None else dummy for item, hit in zip(items, cached, strict=True)]
        batch = len(items)
        max_ref = max(ref.shape[0] for ref in refs)
        max_tokens = max(item.token_ids.shape[0] for item in items)
        ref_batch = np.zeros((batch, max_ref, self.latent_dim), dtype=np.float32)  # (b r c)
        ref_lengths = np.zeros((batch,), dtype=np.int64)
        phonemes = np.zeros((batch, max_tokens), dtype=np.int64)  # (b p), 0 = padding
        phonemes_mask = np.zeros((batch, max_tokens), dtype=bool)
        for i, (item, ref) in enumerate(zip(items, refs, strict=True)):
            ref_batch[i, : ref.shape[0]] = ref
            ref_lengths[i] = ref.shape[0]
            phonemes[i, : item.token_ids.shape[0]] = item.token_ids
            phonemes_mask[i, : item.token_ids.shape[0]] = True
        k_ref, v_ref, ref_mask, k_text, v_text = self._condition_encoder.run(
            ref_batch, ref_lengths, phonemes, phonemes_mask
        )[:5]  # (L b h r k) x2, (b r), (L b h p k) x2
        per_item: list[_RefKV] = []
        for i, (item, hit) in enumerate(zip(items, cached, strict=True)):
            if hit is None:
                frames = item.ref_latents.shape[0]
                hit = (
                    np.ascontiguousarray(k_ref[:, i : i + 1, :, :frames]),
                    np.ascontiguousarray(v_ref[:, i : i + 1, :, :frames]),
                    np.ascontiguousarray(ref_mask[i : i + 1, :frames], dtype=bool),
                )
                self._ref_kv_cache.put(item.ref_key, hit)
            per_item.append(hit)
        k_ref_b, v_ref_b, ref_mask_b = _pad_reference_kv(per_item)
        if timings is not None:
            timings.condition_ms += (time.perf_counter() - started) * 1000.0
        return Conditioning(
            k_ref=k_ref_b,
            v_ref=v_ref_b,
            ref_mask=ref_mask_b,
            k_text=np.asarray(k_text, dtype=np.float32),
            v_text=np.asarray(v_text, dtype=np.float32),
            phonemes_mask=phonemes_mask,
        )

    def _decode(self, latents: np.ndarray, frames: Sequence[int], timings: StageTimings | None) -> list[np.ndarray]:
        """Decodes each item from its own frames only; items of equal length share one decoder call."""
        started = time.perf_counter()
        audio: list[np.ndarray | None] = [None] * len(frames)
        by_length: dict[int, list[int]] = {}
        for i, count in enumerate(frames):
            by_length.setdefault(count, []).append(i)
        for count, indices in by_length.items():
            decoded = self._decoder.decode(latents[indices, :count])  # (k, count * hop)
            for row, i in zip(decoded, indices, strict=True):
                audio[i] = row
        if timings is not None:
            timings.decode_ms += (time.perf_counter() - started) * 1000.0
        return [row for row in audio if row is not None]


def _pad_reference_kv(per_item: Sequence[_RefKV]) -> _RefKV:
    """Stacks per-item reference K/V (L 1 h r_i k) into (L b h r k), padding r with masked zeros."""
    max_ref = max(kv[0].shape[3] for kv in per_item)
    layers, _, heads, _, head_dim = per_item[0][0].shape
    batch = len(per_item)
    k_ref = np.zeros((layers, batch, heads, max_ref, head_dim), dtype=np.float32)
    v_ref = np.zeros_like(k_ref)
    ref_mask = np.zeros((batch, max_ref), dtype=bool)
    for i, (k, v, mask) in enumerate(per_item):
        frames = k.shape[3]
        k_ref[:, i, :, :frames] = k[:, 0]
        v_ref[:, i, :, :frames] = v[:, 0]
        ref_mask[i, :frames] = mask[0]
    return k_ref, v_ref, ref_mask


def _read_model_facts(model_dir: Path) -> tuple[ModelConfig, bool, str]:
    """(config, trained, model_id) from the dmd sidecar; the published graphs (no sidecar) are `full`."""
    payload = read_sidecar(model_dir / DENOISER) or read_sidecar(model_dir / CONDITION_ENCODER)
    if payload is None:
        config = preset_config("full")
        trained, model_id = True, PUBLISHED_MODEL_ID
    else:
        config = ModelConfig.from_dict(payload["model"])
        # A sidecar without the flag is treated as untrained: claiming "trained" for random weights is worse.
        trained = bool(payload.get("trained", False))
        model_id = str(payload.get("model_id") or f"local/{model_dir.name}")
    codec_payload = read_sidecar(model_dir / CODEC_DECODER)
    if codec_payload is not None:
        codec = ModelConfig.from_dict(codec_payload["model"]).codec
        _check_codec(codec, config.codec, model_dir)
        config = replace(config, codec=codec)
    return config, trained, model_id


def _check_codec(codec: CodecConfig, expected: CodecConfig, model_dir: Path) -> None:
    for name in ("sample_rate_hz", "hop_samples", "latent_dim"):
        if getattr(codec, name) != getattr(expected, name):
            raise ValueError(
                f"{model_dir}: the codec's {name} ({getattr(codec, name)}) does not match the model's "
                f"({getattr(expected, name)})"
            )

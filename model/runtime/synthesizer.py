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

The parts live in their own modules: requests and their checks (`request.py`), the condition stage with its
K/V cache (`condition.py`), the sampler (`sampler.py`), the codec (`codec.py`) and what a folder says about
itself (`facts.py`); this module opens a folder and runs them in order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model.config import ModelConfig
from model.errors import InputError
from model.runtime.assets import CODEC_DECODER, CODEC_ENCODER, CONDITION_ENCODER, DENOISER, require_model_dir
from model.runtime.cache import LruCache, content_key
from model.runtime.codec import CodecDecoder, CodecEncoder
from model.runtime.condition import ConditionStage
from model.runtime.facts import PUBLISHED_MODEL_ID, read_model_facts
from model.runtime.graph import OnnxGraph, cpu_threads
from model.runtime.limits import RuntimeLimits
from model.runtime.request import (
    TIMESTEP_TABLES,
    PreparedRequest,
    RequestChecker,
    StageTimings,
    SynthesisRequest,
    SynthesisResult,
    frames_for_duration,
)
from model.runtime.sampler import Sampler

__all__ = [
    "CODEC_ENCODER",
    "PUBLISHED_MODEL_ID",
    "TIMESTEP_TABLES",
    "StageTimings",
    "SynthesisRequest",
    "SynthesisResult",
    "Synthesizer",
    "frames_for_duration",
]

logger = logging.getLogger(__name__)

# Batch axis of every input (spec §1.4, §1.5): the cross K/V are (L b h r k); the rope table has no batch.
_CONDITION_BATCH_AXES: tuple[int | None, ...] = (0, 0, 0, 0)
_DENOISER_BATCH_AXES: tuple[int | None, ...] = (0, 0, 0, 1, 1, 0, 1, 1, 0, None)
# What each axis of each input is (spec §1.4-§1.6; None = fixed): TensorRT's shape profiles are built from it.
_KV_REF, _KV_TEXT = (None, "batch", None, "ref", None), (None, "batch", None, "tokens", None)
GRAPH_AXES: dict[str, tuple[tuple[str | None, ...], ...]] = {
    CONDITION_ENCODER: (("batch", "ref", None), ("batch",), ("batch", "tokens"), ("batch", "tokens")),
    DENOISER: (
        ("batch", "frames", None),
        ("batch", "frames"),
        ("batch",),
        _KV_REF,
        _KV_REF,
        ("batch", "ref"),
        _KV_TEXT,
        _KV_TEXT,
        ("batch", "tokens"),
        (None, "frames", None),
    ),
    CODEC_ENCODER: (("batch", None, "samples"),),
    CODEC_DECODER: (("batch", "frames", None),),
}


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
        graph_precisions: dict[str, str] | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.config = config
        self.trained = trained
        self.model_id = model_id
        self.limits = limits or RuntimeLimits()
        self.graph_precisions = dict(graph_precisions or {})
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
        self._checker = RequestChecker(config, self.limits, self.latent_dim)
        cache_bytes = cache_mb * 1024 * 1024
        self._latents_cache: LruCache[np.ndarray] = LruCache(cache_bytes // 8, lambda a: a.nbytes)
        self._condition = ConditionStage(condition_encoder, self.latent_dim, cache_bytes)

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        providers: Sequence[str] | None = None,
        *,
        limits: RuntimeLimits | None = None,
        intra_op_threads: int = 0,
        reference_threads: int = 0,
        workers: int = 1,
        cache_mb: int = 256,
        io_binding: bool | None = None,
        tensorrt_cache_dir: Path | None = None,
    ) -> Synthesizer:
        """Opens the four graphs of a model folder (dmd/ and codec/ as in the published repo).

        Graphs with a sidecar (our exports) say their config and whether they are trained; the published graphs
        have none and are the `full` preset with the VibeVoice codec, trained. Threads: 0 chooses them
        (`cpu_threads`: the cores split between `workers` workers sharing this synthesizer; one or two for the
        codec encoder, which encodes references next to them). `io_binding`: None binds inputs on the device
        when a GPU provider runs the graphs (see OnnxGraph.upload); True also on the CPU (tests count uploads).
        `tensorrt_cache_dir`: where TensorRT keeps its engines and timing cache (the service's data dir).
        """
        model_dir = Path(model_dir)
        require_model_dir(model_dir)  # names every missing or truncated file
        facts = read_model_facts(model_dir)
        auto_worker, auto_reference = cpu_threads(workers)
        sizes = tensorrt_sizes(facts.config, limits or RuntimeLimits())
        threads = dict.fromkeys((CONDITION_ENCODER, DENOISER, CODEC_DECODER), intra_op_threads or auto_worker)
        threads[CODEC_ENCODER] = reference_threads or auto_reference

        def open_graph(name: str, batch_axes: Sequence[int | None] | None = None) -> OnnxGraph:
            return OnnxGraph(
                model_dir / name,
                providers=providers,
                intra_op_threads=threads[name],
                batch_axes=batch_axes,
                io_binding=io_binding,
                tensorrt_cache_dir=tensorrt_cache_dir,
                tensorrt_axes=GRAPH_AXES[name],
                tensorrt_sizes=sizes,
            )

        return cls(
            model_dir=model_dir,
            config=facts.config,
            trained=facts.trained,
            model_id=facts.model_id,
            condition_encoder=open_graph(CONDITION_ENCODER, _CONDITION_BATCH_AXES),
            denoiser=open_graph(DENOISER, _DENOISER_BATCH_AXES),
            codec_encoder=open_graph(CODEC_ENCODER),
            codec_decoder=open_graph(CODEC_DECODER),
            limits=limits,
            cache_mb=cache_mb,
            graph_precisions=facts.graph_precisions,
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
    def graphs(self) -> dict[str, OnnxGraph]:
        """The four graphs by their path in the folder (dmd/denoiser.onnx, ...)."""
        encoder, decoder = self._codec_graphs
        return {
            CONDITION_ENCODER: self._condition_encoder,
            DENOISER: self._denoiser,
            CODEC_ENCODER: encoder,
            CODEC_DECODER: decoder,
        }

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
        return self._checker.max_tokens

    @property
    def max_reference_frames(self) -> int:
        return self._checker.max_reference_frames

    @property
    def precision(self) -> str:
        """fp32, or what `smalltts optimize` made of the folder (int8, fp16): the denoiser's, from its sidecar."""
        return self.graph_precisions.get(DENOISER, "fp32")

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
            "precision": self.precision,
            "graph_precisions": dict(self.graph_precisions),
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
        self._condition.cache.clear()

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
        key = content_key(audio)
        latents = self._latents_cache.get(key)
        if latents is None:
            latents = self._encoder.encode(audio)  # (r c)
            self._latents_cache.put(key, latents)
        return latents.copy()

    # --- requests -----------------------------------------------------------------------------------------

    def validate(self, request: SynthesisRequest) -> None:
        """Raises InputError (field duration | text | audio | steps | schedule | seed) for an unusable request."""
        self._checker.prepare(request)

    def num_frames(self, duration_s: float) -> int:
        return frames_for_duration(duration_s, self.frame_rate_hz)

    # --- synthesis ----------------------------------------------------------------------------------------

    def synthesize_batch(
        self, requests: Sequence[SynthesisRequest], timings: StageTimings | None = None
    ) -> list[SynthesisResult]:
        """Synthesizes every request; result i belongs to request i. Raises InputError before any work."""
        prepared = [self._checker.prepare(request) for request in requests]
        results: list[SynthesisResult | None] = [None] * len(prepared)
        for group in self._groups(prepared):
            items = [prepared[i] for i in group]
            started = time.perf_counter()
            cond = self._condition.condition(items)
            if timings is not None:
                timings.condition_ms += (time.perf_counter() - started) * 1000.0
            step_ms: list[float] = []
            frames = [item.num_frames for item in items]
            latents = self._sampler.sample(
                cond, frames, [item.seed for item in items], items[0].timesteps, step_ms
            )  # (b n c)
            if timings is not None:
                timings.add_steps(step_ms)
            started = time.perf_counter()
            audio = self._decoder.decode_items(latents, frames)
            if timings is not None:
                timings.decode_ms += (time.perf_counter() - started) * 1000.0
            for i, item, item_audio in zip(group, items, audio, strict=True):
                results[i] = SynthesisResult(
                    audio=item_audio, num_frames=item.num_frames, seed=item.seed, sample_rate_hz=self.sample_rate_hz
                )
        return [result for result in results if result is not None]

    def _groups(self, prepared: Sequence[PreparedRequest]) -> list[list[int]]:
        """Indices that share one sampler loop: same timesteps; one by one when a graph has batch 1 fixed."""
        if not self.accepts_batch:
            return [[i] for i in range(len(prepared))]
        groups: dict[tuple[float, ...], list[int]] = {}
        for i, item in enumerate(prepared):
            groups.setdefault(item.timesteps, []).append(i)
        return list(groups.values())


def tensorrt_sizes(config: ModelConfig, limits: RuntimeLimits) -> dict[str, tuple[int, int, int]]:
    """(min, opt, max) of every named axis: opt is a batch of 8 three-second requests; max is what the limits
    allow (batch 64 covers 32 requests doubled by guidance)."""
    rate = config.codec.frame_rate_hz
    frames = frames_for_duration(limits.max_duration_s, rate)
    ref = min(frames_for_duration(limits.max_reference_s, rate), config.style.max_positions)
    tokens = min(limits.max_tokens, config.text.max_positions)
    opt_frames = frames_for_duration(3.0, rate)
    hop = config.codec.hop_samples
    return {
        "batch": (1, 8, 64),
        "frames": (1, min(opt_frames, frames), frames),
        "ref": (1, min(opt_frames, ref), ref),
        "tokens": (1, min(48, tokens), tokens),
        "samples": (hop, min(opt_frames, ref) * hop, ref * hop),
    }

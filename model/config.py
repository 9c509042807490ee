"""Torch-free configuration of every model component.

One frozen dataclass per component, passed whole to the module that builds it. A `ModelConfig` is saved
as a JSON sidecar next to every checkpoint and every ONNX file (see `write_sidecar`), so a graph or a
checkpoint always says what it is: preset, widths, codec sample rate and hop, vocabulary size, schedule.

Presets:
    full   the original smalltts architecture exactly (327,756,609 parameters)
    small  the same architecture, narrower and shallower (~25 M), trainable on one modest machine
    tiny   < 1 M parameters, for tests
    demo   ~5 M parameters on 16 kHz log-mel latents (model/nn/mel_codec.py), trainable on a CPU: the bundled
           demo model (model/demo/) that speaks offline
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

SIDECAR_FORMAT = "smalltts-sidecar/1"
PresetName = Literal["full", "small", "tiny", "demo"]
PRESETS: tuple[PresetName, ...] = ("full", "small", "tiny", "demo")


@dataclass(frozen=True)
class CodecConfig:
    """The audio codec the model generates latents for; the published one is the VibeVoice codec."""

    kind: str = "vibevoice"  # vibevoice | standin | mel
    sample_rate_hz: int = 24_000
    hop_samples: int = 3_200
    latent_dim: int = 64
    # Only for codecs we build ourselves: width of the stand-in / vocoder networks.
    hidden_dim: int = 0

    @property
    def frame_rate_hz(self) -> float:
        return self.sample_rate_hz / self.hop_samples


@dataclass(frozen=True)
class TextEncoderConfig:
    vocab_size: int = 198
    dim: int = 512
    num_layers: int = 8
    num_heads: int = 4
    mlp_dim: int = 1024
    norm_eps: float = 1e-6
    rope_theta: float = 10_000.0
    max_positions: int = 4096

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads


@dataclass(frozen=True)
class StyleEncoderConfig:
    dim: int = 512
    num_layers: int = 12
    num_heads: int = 8
    mlp_dim: int = 1536
    norm_eps: float = 1e-5
    patch_size: int = 1
    log_scale_init: float = -1.8
    rope_theta: float = 10_000.0
    max_positions: int = 4096

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads


@dataclass(frozen=True)
class DiTConfig:
    dim: int = 960
    depth: int = 12
    num_heads: int = 8
    head_dim: int = 120
    ff_mult: float = 2.5
    conv_pos_kernel: int = 31
    conv_pos_groups: int = 16
    rope_dim: int = 64  # partial rotary: only the first rope_dim channels of each head rotate
    rope_theta: float = 10_000.0
    time_freq_dim: int = 256
    time_scale: float = 1000.0
    norm_eps: float = 1e-6
    max_positions: int = 4096
    # Not in the original (0 = off, as in `full`): an additive attention bias -0.5 (distance / width)^2 from every
    # frame to the text tokens, the distance in tokens between the token and the frame's place when the text is
    # spread evenly over the frames. Head h uses width x 2^h. A diagonal prior, so a small model trained on a CPU
    # does not have to discover the monotonic alignment on its own (the slowest part of learning to speak).
    text_prior_width_tokens: float = 0.0

    @property
    def ff_dim(self) -> int:
        return int(self.dim * self.ff_mult)


@dataclass(frozen=True)
class ScheduleConfig:
    """Shifted cosine schedule (v-prediction) and the few-step sampler's default timesteps."""

    logsnr_shift: float = 2.0 * math.log(0.5)  # -ln 4: the SNR of the plain cosine schedule divided by 4
    t_min: float = 1e-5
    t_max: float = 1.0 - 1e-5
    default_timesteps: Literal["trained", "original"] = "trained"
    # How the exported model is sampled, and with how many denoiser steps unless a request says otherwise. A
    # distilled student (the published weights) re-noises its own estimate at each of its 4 trained timesteps; a
    # teacher that was never distilled (the bundled demo) needs the deterministic many-step DDIM sampler.
    sampler: Literal["student", "ddim"] = "student"
    num_steps: int = 4
    # Classifier-free guidance on the text (1 = off, one denoiser pass per step): v = v_uncond + scale
    # (v_cond - v_uncond), v_uncond with every phoneme masked out, as in the teacher's CFG dropout.
    guidance_scale: float = 1.0
    # The timesteps a distilled student was trained at (its distillation's backward-simulation chain), written by
    # the exporter; the runtime samples a `student` at exactly these when asked for that many steps. None: the
    # `trained` table (1, .75, .5, .25), which is what the published weights were distilled with.
    student_timesteps: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.student_timesteps is not None:
            object.__setattr__(self, "student_timesteps", tuple(float(t) for t in self.student_timesteps))
            ts = self.student_timesteps
            if not ts or not all(0.0 < t <= 1.0 for t in ts) or any(a <= b for a, b in zip(ts, ts[1:], strict=False)):
                raise ValueError(f"schedule.student_timesteps must fall strictly within (0, 1], got {ts}")
        # A sidecar with a sampler this runtime does not know must not be sampled as something else silently.
        if self.sampler not in ("student", "ddim"):
            raise ValueError(f"schedule.sampler must be 'student' or 'ddim', got {self.sampler!r}")
        if self.num_steps < 1 or not self.guidance_scale >= 1.0:
            raise ValueError(
                f"schedule: num_steps must be >= 1 and guidance_scale >= 1, got {self.num_steps}, {self.guidance_scale}"
            )


@dataclass(frozen=True)
class ModelConfig:
    preset: str = "full"
    codec: CodecConfig = field(default_factory=CodecConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    style: StyleEncoderConfig = field(default_factory=StyleEncoderConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    @property
    def latent_dim(self) -> int:
        return self.codec.latent_dim

    @property
    def frame_rate_hz(self) -> float:
        return self.codec.frame_rate_hz

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, data)


def preset_config(name: str) -> ModelConfig:
    """Returns the named preset; raises ValueError naming the known presets otherwise."""
    if name == "full":
        return ModelConfig(preset="full")
    if name == "small":
        return ModelConfig(
            preset="small",
            text=TextEncoderConfig(dim=256, num_layers=4, num_heads=4, mlp_dim=512),
            style=StyleEncoderConfig(dim=256, num_layers=4, num_heads=4, mlp_dim=768),
            dit=DiTConfig(dim=384, depth=8, num_heads=6, head_dim=64, rope_dim=32, conv_pos_groups=16),
        )
    if name == "tiny":
        return ModelConfig(
            preset="tiny",
            codec=CodecConfig(kind="standin", hidden_dim=32),
            text=TextEncoderConfig(dim=32, num_layers=1, num_heads=2, mlp_dim=64),
            style=StyleEncoderConfig(dim=32, num_layers=1, num_heads=2, mlp_dim=64),
            dit=DiTConfig(
                dim=48,
                depth=2,
                num_heads=2,
                head_dim=24,
                rope_dim=16,
                conv_pos_kernel=7,
                conv_pos_groups=4,
                time_freq_dim=32,
            ),
        )
    if name == "demo":
        # 16 kHz audio, 25 latent frames/s of 2 stacked 64-bin log-mel frames; hidden_dim is the vocoder's width.
        return ModelConfig(
            preset="demo",
            codec=CodecConfig(kind="mel", sample_rate_hz=16_000, hop_samples=640, latent_dim=128, hidden_dim=192),
            text=TextEncoderConfig(dim=128, num_layers=3, num_heads=2, mlp_dim=384),
            style=StyleEncoderConfig(dim=128, num_layers=2, num_heads=2, mlp_dim=384),
            dit=DiTConfig(
                dim=192, depth=6, num_heads=3, head_dim=64, rope_dim=32, conv_pos_groups=16, text_prior_width_tokens=3.0
            ),
        )
    raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


# --- sidecars -----------------------------------------------------------------------------------------


def sidecar_path(artifact: str | Path) -> Path:
    """`dmd/denoiser.onnx` -> `dmd/denoiser.json`; `ckpt/step_100.pt` -> `ckpt/step_100.json`."""
    return Path(artifact).with_suffix(".json")


def write_sidecar(artifact: str | Path, config: ModelConfig, **extra: Any) -> Path:
    """Writes the config (plus extra facts such as opset, trained, model_id) next to an artifact."""
    path = sidecar_path(artifact)
    payload = {"format": SIDECAR_FORMAT, "artifact": Path(artifact).name, "model": config.to_dict(), **extra}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def read_sidecar(artifact: str | Path) -> dict[str, Any] | None:
    """Returns the sidecar payload of an artifact, or None when it has none (the published weights)."""
    path = sidecar_path(artifact)
    if not path.is_file():
        return None
    payload = json.loads(path.read_text())
    if not isinstance(payload, dict) or payload.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{path}: not a smalltts sidecar (expected format {SIDECAR_FORMAT!r})")
    return cast(dict[str, Any], payload)


T = TypeVar("T")


def _from_dict(cls: type[T], data: dict[str, Any]) -> T:
    # Unknown keys are an error rather than silently ignored: a sidecar from a newer version should fail loudly.
    known = {f.name: f for f in fields(cast(Any, cls))}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        factory = known[name].default_factory
        sub = factory() if callable(factory) else None
        if sub is not None and is_dataclass(sub) and isinstance(value, dict):
            kwargs[name] = _from_dict(type(sub), value)
        else:
            kwargs[name] = value
    return cls(**kwargs)

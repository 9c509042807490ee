"""Torch-free configuration of every training component, one frozen dataclass each, saved next to checkpoints.

    DatasetConfig        `smalltts dataset build`: audio + transcripts -> webdataset shards of latents
    SynthCorpusConfig    `smalltts dataset synth`: an offline multi-speaker espeak-ng corpus
    LoaderConfig         length-bucketed batches with a same-speaker reference clip per target
    TeacherConfig        v-prediction teacher (spec model.md §4.2)
    ConformerConfig      plain-torch Conformer stack shared by the ASR model and the discriminator
    AsrConfig            CTC recogniser over the 198 phoneme ids, from latents (§3.10, §4.4)
    EcapaConfig, SvConfig  ECAPA-like speaker embedding from latents, regressed onto a pretrained encoder (§4.5)
    DiscriminatorConfig, DistillConfig  DMD2 distillation of the teacher into the 4-step student (§4.3)

Every config has `to_dict` / `from_dict` (unknown keys fail loudly, like `model.config`), and the trainers
write it as `<run>/config.json` and inside every checkpoint. `*_config_for(preset)` gives the sizes matching a
model preset (`tiny` for tests, `small`, `full` = the original's).
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from model.config import ModelConfig, preset_config

MixedPrecision = Literal["auto", "no", "bf16"]
SpeakerEncoderName = Literal["resemblyzer", "speechbrain", "none"]


@dataclass(frozen=True)
class DatasetConfig:
    """How `smalltts dataset build` turns clips into shards."""

    codec_dir: str = ""  # folder holding the codec's encoder.onnx (+ sidecar): a model dir's codec/ folder
    shard_size: int = 256  # samples per tar shard (also the unit of resumption)
    encode_batch_size: int = 8  # clips per codec-encoder call (padded to the longest, sorted by length)
    min_duration_s: float = 0.4
    max_duration_s: float = 20.0
    max_phonemes: int = 1024
    speaker_encoder: SpeakerEncoderName = "none"  # stores a pretrained speaker embedding per clip (SV targets)
    silence_peak: float = 1e-3  # a clip whose peak is below this is skipped as silent


@dataclass(frozen=True)
class SynthCorpusConfig:
    """`smalltts dataset synth`: espeak-ng voices x variants, with speed and pitch varied per clip.

    Training clips speak `text_source`, held-out clips `heldout_text_source` (training.sentences): "grammar" is
    the small template grammar of the first demo, "wordnet" / "fortunes" open-vocabulary English text."""

    num_speakers: int = 8
    clips_per_speaker: int = 12
    seed: int = 0
    min_words: int = 4
    max_words: int = 12
    speed_wpm: tuple[int, int] = (130, 190)
    pitch: tuple[int, int] = (25, 75)
    text_source: Literal["grammar", "wordnet", "fortunes"] = "grammar"
    heldout_text_source: Literal["grammar", "wordnet", "fortunes"] = "grammar"

    def __post_init__(self) -> None:
        if self.num_speakers < 1 or self.clips_per_speaker < 1:
            raise ValueError("num_speakers and clips_per_speaker must be >= 1")
        if not 1 <= self.min_words <= self.max_words:
            raise ValueError(f"need 1 <= min_words <= max_words, got {self.min_words}..{self.max_words}")
        sources = ("grammar", "wordnet", "fortunes")
        if self.text_source not in sources or self.heldout_text_source not in sources:
            raise ValueError(f"text sources must be one of {sources}")
        if self.text_source != "grammar" and self.text_source == self.heldout_text_source:
            raise ValueError("held-out sentences need a source disjoint from the training one")


@dataclass(frozen=True)
class LoaderConfig:
    max_batch_size: int = 16
    max_frames_per_batch: int = 4096  # target frames summed over a batch (bounds memory for long buckets)
    num_buckets: int = 8  # length buckets: a batch holds clips of similar length, so little padding
    max_ref_frames: int = 64  # a longer reference clip is cropped to a random window of this many frames
    min_ref_frames: int = 4
    seed: int = 0


@dataclass(frozen=True)
class TeacherConfig:
    preset: str = "tiny"
    # Nested ModelConfig fields that replace the preset's, e.g. {"dit": {"dim": 96, "head_dim": 48}}.
    model_overrides: dict[str, Any] | None = None
    steps: int = 1000
    lr: float = 1.5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-2
    warmup_steps: int = 1500
    min_lr: float = 1e-5
    grad_clip_norm: float = 1.0
    ema_beta: float = 0.9999
    ema_warmup_power: float = 2.0 / 3.0  # EMA decay ramps up as 1 - (1 + step)^-power, capped at ema_beta
    text_drop_prob: float = 0.1  # CFG dropout: the sample sees no phonemes
    speaker_drop_prob: float = 0.1  # CFG dropout: the sample sees no reference
    logit_normal_mean: float = 0.0  # t = sigmoid(N(mean, std))
    logit_normal_std: float = 1.0
    gradient_checkpointing: bool = False
    mixed_precision: MixedPrecision = "auto"  # auto = bf16 on a GPU that supports it, fp32 on CPU
    checkpoint_every: int = 1500
    keep_checkpoints: int = 3
    log_every: int = 100
    seed: int = 0
    loader: LoaderConfig = field(default_factory=LoaderConfig)


@dataclass(frozen=True)
class ConformerConfig:
    """A Conformer stack (Gulati et al.): half FF, self-attention, convolution module, half FF, LayerNorm."""

    dim: int = 64
    num_heads: int = 16
    ffn_dim: int = 1024
    num_layers: int = 7
    kernel_size: int = 9
    dropout: float = 0.0
    conv_norm: Literal["batch", "group"] = "batch"


@dataclass(frozen=True)
class AsrConfig:
    preset: str = "tiny"
    upsample: int = 4  # CTC needs more output steps than a phoneme string has tokens: 7.5 fps x 4 = 30 steps/s
    conformer: ConformerConfig = field(default_factory=ConformerConfig)
    steps: int = 1000
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-2
    warmup_steps: int = 4000
    min_lr: float = 1e-5
    grad_clip_norm: float = 5.0
    mixed_precision: MixedPrecision = "auto"
    checkpoint_every: int = 2000
    keep_checkpoints: int = 3
    log_every: int = 100
    seed: int = 0
    loader: LoaderConfig = field(default_factory=LoaderConfig)


@dataclass(frozen=True)
class EcapaConfig:
    """ECAPA-TDNN sizes (speechbrain's ECAPA_TDNN as the original configured it, written in plain torch)."""

    channels: tuple[int, ...] = (768, 768, 768, 768, 2304)
    kernel_sizes: tuple[int, ...] = (3, 3, 3, 3, 1)
    dilations: tuple[int, ...] = (1, 2, 3, 5, 1)
    attention_channels: int = 192
    res2net_scale: int = 12
    se_channels: int = 192
    global_context: bool = True
    emb_dim: int = 256  # = the pretrained encoder's embedding size (resemblyzer: 256; speechbrain ECAPA: 192)


@dataclass(frozen=True)
class SvConfig:
    preset: str = "tiny"
    ecapa: EcapaConfig = field(default_factory=EcapaConfig)
    steps: int = 1000
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-2
    warmup_steps: int = 0
    min_lr: float = 1e-4  # the original used no schedule
    grad_clip_norm: float = 5.0
    mixed_precision: MixedPrecision = "auto"
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 100
    seed: int = 0
    loader: LoaderConfig = field(default_factory=LoaderConfig)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Reads the fake-score model's last `num_feature_layers` hidden states; input widths follow the DiT."""

    width: int = 512
    num_feature_layers: int = 3
    conformer: ConformerConfig = field(
        default_factory=lambda: ConformerConfig(
            dim=512, num_heads=8, ffn_dim=1024, num_layers=6, kernel_size=7, conv_norm="group"
        )
    )


@dataclass(frozen=True)
class DistillConfig:
    """DMD2 (training.distill). The preset must be the teacher's: `smalltts train distill` reads it from the teacher
    checkpoint and refuses a --preset that disagrees."""

    preset: str = "tiny"
    # The student's sampling chain, written into the exported sidecar (ScheduleConfig.student_timesteps).
    student_timesteps: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
    dmd_t_range: tuple[float, float] = (0.02, 0.98)  # t of the distribution-matching term, clamped as in DMD2
    text_cfg_scale: float = 2.0
    speaker_cfg_scale: float = 1.5
    scorer_updates: int = 5  # fake-score (critic) updates per student update, each on a fresh batch
    gan_weight: float = 1e-3  # generator's LSGAN term
    critic_gan_weight: float = 1e-2  # discriminator's LSGAN term in the critic update (reaches the fake-score backbone)
    asr_weight: float = 1.0
    sv_weight: float = 1.0
    # DMOSpeech switches the extra terms on once the student has settled: backward simulation (before it, step k
    # sees the real clip noised to t_k), the GAN, CTC and, later, the speaker loss.
    backward_sim_start_step: int = 0
    gan_start_step: int = 0
    asr_start_step: int = 5000
    sv_start_step: int = 7000
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    steps: int = 40_000
    lr: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-2
    warmup_steps: int = 500  # the student's learning rate ramps up linearly, then stays constant (as DMD2)
    grad_clip_norm: float = 1.0  # 0 = off
    ema_beta: float = 0.999  # the exported student is this EMA of the student's weights
    ema_warmup_power: float = 2.0 / 3.0
    gradient_checkpointing: bool = True
    mixed_precision: MixedPrecision = "auto"
    checkpoint_every: int = 800
    keep_checkpoints: int = 3
    log_every: int = 100
    seed: int = 0
    loader: LoaderConfig = field(default_factory=LoaderConfig)

    def __post_init__(self) -> None:
        ts = tuple(self.student_timesteps)
        if not ts or ts[0] != 1.0 or any(a <= b for a, b in zip(ts, ts[1:], strict=False)) or ts[-1] <= 0.0:
            raise ValueError(f"student_timesteps must start at 1.0 and fall strictly above 0, got {ts}")
        lo, hi = self.dmd_t_range
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"dmd_t_range must satisfy 0 <= lo < hi <= 1, got {self.dmd_t_range}")
        if self.scorer_updates < 1:
            raise ValueError(f"scorer_updates must be >= 1, got {self.scorer_updates}")
        if not 0.0 <= self.ema_beta < 1.0:
            raise ValueError(f"ema_beta must be in [0, 1), got {self.ema_beta}")


# --- presets -------------------------------------------------------------------------------------------

_TINY_LOADER = LoaderConfig(max_batch_size=8, max_frames_per_batch=2048, num_buckets=2, max_ref_frames=32)
# The demo preset trains on a CPU in the background (25 latent frames/s): small batches, frequent checkpoints.
_DEMO_LOADER = LoaderConfig(max_batch_size=16, max_frames_per_batch=1600, num_buckets=4, max_ref_frames=64)
# A DMD2 step costs about 20 DiT passes (the student's chain, three CFG branches of the teacher, two critic updates):
# half the teacher's batch keeps it near 5 s on two CPU threads.
_DEMO_DISTILL_LOADER = replace(_DEMO_LOADER, max_batch_size=8, max_frames_per_batch=800)


def teacher_config_for(preset: str, **overrides: Any) -> TeacherConfig:
    base = TeacherConfig(preset=preset)
    if preset == "tiny":
        base = replace(base, warmup_steps=10, checkpoint_every=50, log_every=10, loader=_TINY_LOADER)
    elif preset == "demo":
        base = replace(
            base, steps=8_000, lr=5e-4, warmup_steps=300, ema_beta=0.999, checkpoint_every=250, keep_checkpoints=2,
            log_every=10, loader=_DEMO_LOADER,
        )  # fmt: skip
    return replace(base, **overrides)


def asr_config_for(preset: str, **overrides: Any) -> AsrConfig:
    base = AsrConfig(preset=preset)
    if preset == "tiny":
        base = replace(
            base,
            conformer=ConformerConfig(dim=64, num_heads=4, ffn_dim=128, num_layers=2, kernel_size=9),
            warmup_steps=10,
            lr=1e-3,
            checkpoint_every=50,
            log_every=10,
            loader=_TINY_LOADER,
        )
    elif preset == "small":
        base = replace(base, conformer=ConformerConfig(num_layers=4, ffn_dim=512))
    elif preset == "demo":
        base = replace(
            base, upsample=2, conformer=ConformerConfig(dim=96, num_heads=4, ffn_dim=256, num_layers=3, kernel_size=9),
            steps=1500, lr=1e-3, warmup_steps=200, checkpoint_every=250, keep_checkpoints=2, log_every=10,
            loader=_DEMO_LOADER,
        )  # fmt: skip
    return replace(base, **overrides)


def sv_config_for(preset: str, **overrides: Any) -> SvConfig:
    base = SvConfig(preset=preset)
    if preset == "tiny":
        base = replace(
            base,
            ecapa=EcapaConfig(
                channels=(32, 32, 32, 32, 96), attention_channels=16, res2net_scale=4, se_channels=16, emb_dim=256
            ),
            lr=1e-3,
            min_lr=1e-3,
            checkpoint_every=50,
            log_every=10,
            loader=_TINY_LOADER,
        )
    elif preset == "demo":
        base = replace(
            base,
            ecapa=EcapaConfig(
                channels=(128, 128, 128, 128, 384), attention_channels=32, res2net_scale=4, se_channels=32, emb_dim=256
            ),
            steps=1500, lr=1e-3, min_lr=1e-4, warmup_steps=100, checkpoint_every=250, keep_checkpoints=2,
            log_every=10, loader=_DEMO_LOADER,
        )  # fmt: skip
    elif preset == "small":
        base = replace(
            base,
            ecapa=EcapaConfig(
                channels=(256, 256, 256, 256, 768), attention_channels=64, res2net_scale=8, se_channels=64
            ),
        )
    return replace(base, **overrides)


def distill_config_for(preset: str, **overrides: Any) -> DistillConfig:
    base = DistillConfig(preset=preset)
    if preset == "tiny":
        base = replace(
            base,
            discriminator=DiscriminatorConfig(
                width=32,
                num_feature_layers=2,  # the tiny DiT has 2 blocks
                conformer=ConformerConfig(
                    dim=32, num_heads=2, ffn_dim=64, num_layers=1, kernel_size=7, conv_norm="group"
                ),
            ),
            asr_start_step=2,
            sv_start_step=3,
            lr=1e-4,
            warmup_steps=2,
            ema_beta=0.9,
            gradient_checkpointing=False,
            checkpoint_every=50,
            log_every=10,
            loader=_TINY_LOADER,
        )
    elif preset == "demo":
        # A CPU run of a few hundred steps: every term on from the start, 2 critic updates per student update. The
        # weights balance the gradients each term sends to x0, measured on the fine-tuned teacher's samples: at
        # weight 1 the CTC term's is 150-260x the DMD term's (DMD's is a mean over b*n*c entries), so 0.01 puts it
        # at 1.5-2.6x and the student stays a distribution matcher that also reads well, not an ASR adversary.
        # The SV term's is 1.3-4x at weight 1: 0.5.
        base = replace(
            base,
            discriminator=DiscriminatorConfig(
                width=96,
                num_feature_layers=3,
                conformer=ConformerConfig(
                    dim=96, num_heads=4, ffn_dim=256, num_layers=2, kernel_size=7, conv_norm="group"
                ),
            ),
            scorer_updates=2, asr_weight=0.01, sv_weight=0.5, asr_start_step=0, sv_start_step=100, lr=5e-5,
            warmup_steps=50, ema_beta=0.99,
            gradient_checkpointing=False, steps=600, checkpoint_every=25, keep_checkpoints=2, log_every=5,
            loader=_DEMO_DISTILL_LOADER,
        )  # fmt: skip
    elif preset == "small":
        base = replace(
            base,
            discriminator=DiscriminatorConfig(
                width=256,
                conformer=ConformerConfig(
                    dim=256, num_heads=4, ffn_dim=512, num_layers=4, kernel_size=7, conv_norm="group"
                ),
            ),
        )
    return replace(base, **overrides)


# --- (de)serialisation -----------------------------------------------------------------------------------

C = TypeVar("C")


def config_to_dict(config: Any) -> dict[str, Any]:
    return asdict(config)


def config_from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuilds a (nested) config dataclass; unknown keys raise ValueError, lists become tuples."""
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        f = known[name]
        sample = f.default_factory() if f.default_factory is not MISSING else f.default
        if is_dataclass(sample) and isinstance(value, dict):
            kwargs[name] = config_from_dict(type(sample), value)
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def save_config(path: str | Path, config: Any, **extra: Any) -> Path:
    """Writes {"kind": ClassName, "config": {...}, **extra} as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"kind": type(config).__name__, "config": config_to_dict(config), **extra}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def load_config(path: str | Path, cls: type[C]) -> C:
    payload = json.loads(Path(path).read_text())
    if payload.get("kind") != cls.__name__:
        raise ValueError(f"{path}: holds a {payload.get('kind')!r}, expected {cls.__name__}")
    return config_from_dict(cls, payload["config"])


def merged_model_config(preset: str, overrides: dict[str, Any] | None) -> ModelConfig:
    """The preset's ModelConfig with `overrides` (nested dicts) merged in; unknown keys raise ValueError."""

    def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in extra.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        return out

    cfg = preset_config(preset)
    return ModelConfig.from_dict(merge(cfg.to_dict(), overrides)) if overrides else cfg

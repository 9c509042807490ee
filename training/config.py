"""Torch-free configuration of every training component, one frozen dataclass each, saved next to checkpoints.

    DatasetConfig        `smalltts dataset build`: audio + transcripts -> webdataset shards of latents
    SynthCorpusConfig    `smalltts dataset synth`: an offline multi-speaker espeak-ng corpus
    OptimizerConfig      AdamW + warmup + cosine/constant learning rate + gradient clipping (every trainer)
    RunConfig            steps, gradient accumulation, precision, compile, logging and checkpoint cadence, seed
    LoaderConfig         length-bucketed batches with a same-speaker reference clip per target
    TeacherConfig        v-prediction teacher (spec model.md §4.2)
    ConformerConfig      plain-torch Conformer stack shared by the ASR model and the discriminator
    AsrConfig            CTC recogniser over the 198 phoneme ids, from latents (§3.10, §4.4)
    EcapaConfig, SvConfig  ECAPA-like speaker embedding from latents, regressed onto a pretrained encoder (§4.5)
    DiscriminatorConfig, DistillConfig  DMD2 distillation of the teacher into the 4-step student (§4.3)
    VocoderConfig        the offline mel codec's vocoder (training.vocoder)

The trainer configs share two groups, `optim` (OptimizerConfig) and `run` (RunConfig), and check their ranges
in `__post_init__`, so a bad value fails wherever the config is made (CLI, saved file, Python).

`config_to_dict` / `config_from_dict` (unknown keys fail loudly, like `model.config`) are the one way in and out;
the trainers write the dict as `<run>/config.json` and inside every checkpoint, and `config_from_dict` upgrades
the flat layout saved before the groups existed (`lr`, `steps`, `mixed_precision`, ... at the top level).
`*_config_for(preset, **overrides)` gives the recipe matching a model preset (`tiny` for tests, `demo` for the
CPU demo, `small`, `full` = the original's); overrides may name group fields flat (`steps=10, lr=1e-3`).
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from model.config import ModelConfig, preset_config

Precision = Literal["auto", "bf16", "fp16", "fp32"]
LrSchedule = Literal["cosine", "constant"]
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp16", "fp32")
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
class OptimizerConfig:
    """AdamW; the learning rate rises linearly over `warmup_steps`, then follows `schedule`: "cosine" down to
    `min_lr` at the run's last step, or "constant" (DMD2, the original's SV)."""

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-2
    warmup_steps: int = 0
    min_lr: float = 1e-5
    schedule: LrSchedule = "cosine"
    grad_clip_norm: float = 1.0  # 0 = off

    def __post_init__(self) -> None:
        if not self.lr > 0.0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.min_lr < 0.0 or self.weight_decay < 0.0 or self.grad_clip_norm < 0.0:
            raise ValueError("min_lr, weight_decay and grad_clip_norm must be >= 0")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be cosine or constant, got {self.schedule!r}")


@dataclass(frozen=True)
class RunConfig:
    """How long and how a trainer runs: optimizer updates, accumulation, arithmetic, cadence, seed."""

    steps: int = 1000  # optimizer updates
    grad_accum_steps: int = 1  # micro-batches per update: each holds the loader's batch, the update sees their sum
    # auto = bf16 on a GPU that has it (fp16 with loss scaling on one that has not) and on a CPU with bf16 matrix
    # units; fp32 elsewhere.
    precision: Precision = "auto"
    compile: bool = False  # torch.compile the DiT / model (the original compiled its DiT)
    checkpoint_every: int = 1000  # 0 = only at the end (and on SIGTERM)
    keep_checkpoints: int = 3  # 0 = keep all
    log_every: int = 100  # losses are read back from the device only at these steps
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.grad_accum_steps < 1 or self.log_every < 1:
            raise ValueError("grad_accum_steps and log_every must be >= 1")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")


@dataclass(frozen=True)
class LoaderConfig:
    """One micro-batch: with RunConfig.grad_accum_steps = k an update reads k of these (k x the clips and frames)."""

    max_batch_size: int = 16
    max_frames_per_batch: int = 4096  # target frames summed over a batch (bounds memory for long buckets)
    num_buckets: int = 8  # length buckets: a batch holds clips of similar length, so little padding
    max_ref_frames: int = 64  # a longer reference clip is cropped to a random window of this many frames
    min_ref_frames: int = 4
    seed: int = 0
    num_workers: int = 0  # DataLoader worker processes reading and collating ahead of the step (0 = in the loop)
    prefetch_batches: int = 2  # steps each worker prepares ahead

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_frames_per_batch < 1 or self.num_buckets < 1:
            raise ValueError("max_batch_size, max_frames_per_batch and num_buckets must be >= 1")
        if not 1 <= self.min_ref_frames <= self.max_ref_frames:
            raise ValueError(
                f"need 1 <= min_ref_frames <= max_ref_frames, got {self.min_ref_frames}..{self.max_ref_frames}"
            )
        if self.num_workers < 0 or self.prefetch_batches < 1:
            raise ValueError("num_workers must be >= 0 and prefetch_batches >= 1")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def _check_ema(beta: float) -> None:
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"ema_beta must be in [0, 1), got {beta}")


@dataclass(frozen=True)
class TeacherConfig:
    """The defaults are the `full` recipe, the original's (spec §4.2): 330k steps, 1,500 warmup, cosine to 1e-5."""

    preset: str = "tiny"
    # Nested ModelConfig fields that replace the preset's, e.g. {"dit": {"dim": 96, "head_dim": 48}}.
    model_overrides: dict[str, Any] | None = None
    optim: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(lr=1.5e-4, warmup_steps=1500))
    run: RunConfig = field(default_factory=lambda: RunConfig(steps=330_000, checkpoint_every=1500))
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    ema_beta: float = 0.9999
    ema_warmup_power: float = 2.0 / 3.0  # EMA decay ramps up as 1 - (1 + step)^-power, capped at ema_beta
    text_drop_prob: float = 0.1  # CFG dropout: the sample sees no phonemes
    speaker_drop_prob: float = 0.1  # CFG dropout: the sample sees no reference
    logit_normal_mean: float = 0.0  # t = sigmoid(N(mean, std))
    logit_normal_std: float = 1.0
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        _check_ema(self.ema_beta)
        _check_probability("text_drop_prob", self.text_drop_prob)
        _check_probability("speaker_drop_prob", self.speaker_drop_prob)
        if not self.logit_normal_std > 0.0:
            raise ValueError(f"logit_normal_std must be > 0, got {self.logit_normal_std}")


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

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError(f"conformer dim {self.dim} is not a multiple of num_heads {self.num_heads}")


@dataclass(frozen=True)
class AsrConfig:
    """Defaults = the `full` recipe (spec §4.4): 200k steps, 4,000 warmup, cosine to 1e-5."""

    preset: str = "tiny"
    upsample: int = 4  # CTC needs more output steps than a phoneme string has tokens: 7.5 fps x 4 = 30 steps/s
    conformer: ConformerConfig = field(default_factory=ConformerConfig)
    optim: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(warmup_steps=4000, grad_clip_norm=5.0))
    run: RunConfig = field(default_factory=lambda: RunConfig(steps=200_000, checkpoint_every=2000))
    loader: LoaderConfig = field(default_factory=LoaderConfig)

    def __post_init__(self) -> None:
        if self.upsample < 1:
            raise ValueError(f"upsample must be >= 1, got {self.upsample}")


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
    """Defaults = the `full` recipe (spec §4.5): 200k steps at a constant 1e-4, clipping at 5."""

    preset: str = "tiny"
    ecapa: EcapaConfig = field(default_factory=EcapaConfig)
    optim: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(min_lr=1e-4, schedule="constant", grad_clip_norm=5.0)
    )
    run: RunConfig = field(default_factory=lambda: RunConfig(steps=200_000, checkpoint_every=1000))
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
    checkpoint and refuses a --preset that disagrees. Defaults = the `full` recipe (spec §4.3: 40k steps, 1e-5)."""

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
    # The student's learning rate ramps up linearly, then stays constant (as DMD2); the critic's is constant.
    optim: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(lr=1e-5, warmup_steps=500, min_lr=1e-5, schedule="constant")
    )
    run: RunConfig = field(default_factory=lambda: RunConfig(steps=40_000, checkpoint_every=800))
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    ema_beta: float = 0.999  # the exported student is this EMA of the student's weights
    ema_warmup_power: float = 2.0 / 3.0
    gradient_checkpointing: bool = True

    def __post_init__(self) -> None:
        ts = tuple(self.student_timesteps)
        if not ts or ts[0] != 1.0 or any(a <= b for a, b in zip(ts, ts[1:], strict=False)) or ts[-1] <= 0.0:
            raise ValueError(f"student_timesteps must start at 1.0 and fall strictly above 0, got {ts}")
        lo, hi = self.dmd_t_range
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"dmd_t_range must satisfy 0 <= lo < hi <= 1, got {self.dmd_t_range}")
        if self.scorer_updates < 1:
            raise ValueError(f"scorer_updates must be >= 1, got {self.scorer_updates}")
        _check_ema(self.ema_beta)
        for name in ("gan_weight", "critic_gan_weight", "asr_weight", "sv_weight"):
            if getattr(self, name) < 0.0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("backward_sim_start_step", "gan_start_step", "asr_start_step", "sv_start_step"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class VocoderConfig:
    """The offline mel codec's vocoder (training.vocoder); it trains in fp32 on the CPU."""

    preset: str = "demo"  # the model preset whose codec config (kind "mel") is trained
    batch_size: int = 16
    segment_s: float = 1.0
    max_clips: int = 2000  # clips held in memory for training segments (evenly over speakers)
    stats_clips: int = 400  # clips the log-mel statistics are fitted on
    optim: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(lr=1e-3, betas=(0.8, 0.99), warmup_steps=200)
    )
    run: RunConfig = field(
        default_factory=lambda: RunConfig(
            steps=20_000, precision="fp32", checkpoint_every=250, keep_checkpoints=2, log_every=25
        )
    )

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_clips < 1 or self.stats_clips < 1:
            raise ValueError("batch_size, max_clips and stats_clips must be >= 1")
        if not self.segment_s > 0.0:
            raise ValueError(f"segment_s must be > 0, got {self.segment_s}")


# --- overrides and presets -----------------------------------------------------------------------------

C = TypeVar("C")
# Where a field name given flat (a flag, an old saved config) lives; the first group holding it wins, so `seed`
# is the run's seed (the loader's has to be named through `loader`).
_GROUPS: tuple[tuple[str, type[Any]], ...] = (("optim", OptimizerConfig), ("run", RunConfig), ("loader", LoaderConfig))
_RENAMED = {"mixed_precision": "precision"}
_OLD_PRECISION = {"auto": "auto", "no": "fp32", "bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}


def _group_of(cls: type[Any], name: str) -> str | None:
    own = {f.name for f in fields(cls)}
    for group, group_cls in _GROUPS:
        if group in own and name in {f.name for f in fields(group_cls)}:
            return group
    return None


def with_overrides(cfg: C, **overrides: Any) -> C:
    """`cfg` with fields replaced; a group's field may be named flat (`steps=10` sets `cfg.run.steps`)."""
    own = {f.name for f in fields(cfg)}  # type: ignore[arg-type]
    direct: dict[str, Any] = {}
    grouped: dict[str, dict[str, Any]] = {}
    for name, value in overrides.items():
        if name in own:
            direct[name] = value
            continue
        group = _group_of(type(cfg), name)
        if group is None:
            raise ValueError(f"{type(cfg).__name__} has no field {name!r}")
        grouped.setdefault(group, {})[name] = value
    for group, values in grouped.items():
        direct[group] = replace(direct.get(group, getattr(cfg, group)), **values)
    return replace(cfg, **direct)  # type: ignore[type-var]


_TINY_LOADER = LoaderConfig(max_batch_size=8, max_frames_per_batch=2048, num_buckets=2, max_ref_frames=32)
# The demo preset trains on a CPU in the background (25 latent frames/s): small batches, frequent checkpoints.
_DEMO_LOADER = LoaderConfig(max_batch_size=16, max_frames_per_batch=1600, num_buckets=4, max_ref_frames=64)
# A DMD2 step costs about 20 DiT passes (the student's chain, three CFG branches of the teacher, two critic updates):
# half the teacher's batch keeps it near 5 s on two CPU threads.
_DEMO_DISTILL_LOADER = replace(_DEMO_LOADER, max_batch_size=8, max_frames_per_batch=800)
# GPU recipes: two worker processes collate ahead of the step.
_GPU_LOADER = LoaderConfig(num_workers=2)
_TINY_RUN = RunConfig(steps=200, checkpoint_every=50, log_every=10)


def teacher_config_for(preset: str, **overrides: Any) -> TeacherConfig:
    base = TeacherConfig(preset=preset)
    if preset == "tiny":
        base = replace(base, optim=replace(base.optim, warmup_steps=10), run=_TINY_RUN, loader=_TINY_LOADER)
    elif preset == "demo":
        base = replace(
            base, optim=replace(base.optim, lr=5e-4, warmup_steps=300), ema_beta=0.999,
            run=RunConfig(steps=8_000, checkpoint_every=250, keep_checkpoints=2, log_every=10), loader=_DEMO_LOADER,
        )  # fmt: skip
    elif preset == "small":
        base = replace(
            base, optim=replace(base.optim, lr=3e-4, warmup_steps=1000), ema_beta=0.999,
            run=RunConfig(steps=100_000, checkpoint_every=2000), loader=_GPU_LOADER,
        )  # fmt: skip
    elif preset == "full":
        base = replace(base, loader=_GPU_LOADER)
    return with_overrides(base, **overrides)


def asr_config_for(preset: str, **overrides: Any) -> AsrConfig:
    base = AsrConfig(preset=preset)
    if preset == "tiny":
        base = replace(
            base,
            conformer=ConformerConfig(dim=64, num_heads=4, ffn_dim=128, num_layers=2, kernel_size=9),
            optim=replace(base.optim, lr=1e-3, warmup_steps=10),
            run=_TINY_RUN,
            loader=_TINY_LOADER,
        )
    elif preset == "small":
        base = replace(
            base, conformer=ConformerConfig(num_layers=4, ffn_dim=512), optim=replace(base.optim, warmup_steps=2000),
            run=RunConfig(steps=50_000, checkpoint_every=2000), loader=_GPU_LOADER,
        )  # fmt: skip
    elif preset == "demo":
        base = replace(
            base, upsample=2, conformer=ConformerConfig(dim=96, num_heads=4, ffn_dim=256, num_layers=3, kernel_size=9),
            optim=replace(base.optim, lr=1e-3, warmup_steps=200),
            run=RunConfig(steps=1500, checkpoint_every=250, keep_checkpoints=2, log_every=10), loader=_DEMO_LOADER,
        )  # fmt: skip
    elif preset == "full":
        base = replace(base, loader=_GPU_LOADER)
    return with_overrides(base, **overrides)


def sv_config_for(preset: str, **overrides: Any) -> SvConfig:
    base = SvConfig(preset=preset)
    if preset == "tiny":
        base = replace(
            base,
            ecapa=EcapaConfig(
                channels=(32, 32, 32, 32, 96), attention_channels=16, res2net_scale=4, se_channels=16, emb_dim=256
            ),
            optim=replace(base.optim, lr=1e-3, min_lr=1e-3),
            run=_TINY_RUN,
            loader=_TINY_LOADER,
        )
    elif preset == "demo":
        base = replace(
            base,
            ecapa=EcapaConfig(
                channels=(128, 128, 128, 128, 384), attention_channels=32, res2net_scale=4, se_channels=32, emb_dim=256
            ),
            optim=replace(base.optim, lr=1e-3, min_lr=1e-4, warmup_steps=100, schedule="cosine"),
            run=RunConfig(steps=1500, checkpoint_every=250, keep_checkpoints=2, log_every=10), loader=_DEMO_LOADER,
        )  # fmt: skip
    elif preset == "small":
        base = replace(
            base,
            ecapa=EcapaConfig(
                channels=(256, 256, 256, 256, 768), attention_channels=64, res2net_scale=8, se_channels=64
            ),
            run=RunConfig(steps=50_000, checkpoint_every=1000),
            loader=_GPU_LOADER,
        )
    elif preset == "full":
        base = replace(base, loader=_GPU_LOADER)
    return with_overrides(base, **overrides)


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
            optim=replace(base.optim, lr=1e-4, min_lr=1e-4, warmup_steps=2),
            ema_beta=0.9,
            gradient_checkpointing=False,
            run=_TINY_RUN,
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
            scorer_updates=2, asr_weight=0.01, sv_weight=0.5, asr_start_step=0, sv_start_step=100,
            optim=replace(base.optim, lr=5e-5, min_lr=5e-5, warmup_steps=50), ema_beta=0.99,
            gradient_checkpointing=False,
            run=RunConfig(steps=600, checkpoint_every=25, keep_checkpoints=2, log_every=5),
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
            run=RunConfig(steps=20_000, checkpoint_every=800),
            asr_start_step=2500,
            sv_start_step=3500,
            loader=_GPU_LOADER,
        )
    elif preset == "full":
        base = replace(base, loader=_GPU_LOADER)
    return with_overrides(base, **overrides)


def vocoder_config_for(**overrides: Any) -> VocoderConfig:
    return with_overrides(VocoderConfig(), **overrides)


def recipe_problems(cfg: Any) -> list[str]:
    """What is inconsistent in a recipe (warmup that never ends, a checkpoint cadence past the last step)."""
    problems = []
    run, optim = cfg.run, cfg.optim
    if optim.warmup_steps >= run.steps:
        problems.append(
            f"warmup_steps {optim.warmup_steps} >= steps {run.steps}: the learning rate never leaves warmup"
        )
    if run.checkpoint_every > run.steps:
        problems.append(f"checkpoint_every {run.checkpoint_every} > steps {run.steps}")
    if run.log_every > run.steps:
        problems.append(f"log_every {run.log_every} > steps {run.steps}")
    for name in ("asr_start_step", "sv_start_step"):
        if getattr(cfg, name, 0) >= run.steps:
            problems.append(f"{name} {getattr(cfg, name)} >= steps {run.steps}: the term never switches on")
    return problems


# --- (de)serialisation -----------------------------------------------------------------------------------


def config_to_dict(config: Any) -> dict[str, Any]:
    return asdict(config)


def _upgrade_flat_keys(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    """The flat layout saved before the optim/run groups (lr, steps, mixed_precision at the top) -> grouped."""
    own = {f.name for f in fields(cls)}
    out: dict[str, Any] = {name: dict(v) if isinstance(v, dict) else v for name, v in data.items() if name in own}
    for name, value in data.items():
        if name in own:
            continue
        new_name = _RENAMED.get(name, name)
        if new_name == "precision":
            value = _OLD_PRECISION.get(value, value)
        group = _group_of(cls, new_name)
        if group is None or group == "loader":
            out[name] = value  # unknown: reported by the caller
            continue
        out.setdefault(group, {})
        if isinstance(out[group], dict):
            out[group].setdefault(new_name, value)
    return out


def config_from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuilds a (nested) config dataclass over its defaults: missing keys keep the default (a group's from its
    default factory), unknown keys raise ValueError, lists become tuples, old flat keys move into their groups."""
    data = _upgrade_flat_keys(cls, data)
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        f = known[name]
        sample = f.default_factory() if f.default_factory is not MISSING else f.default
        if is_dataclass(sample) and not isinstance(sample, type) and isinstance(value, dict):
            nested = config_from_dict(type(sample), value)
            given = _upgrade_flat_keys(type(sample), value)
            kwargs[name] = replace(sample, **{key: getattr(nested, key) for key in given})
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
    """The one reader of a saved config: a run's or checkpoint's config.json, or a `save_config` file."""
    payload = json.loads(Path(path).read_text())
    if payload.get("kind") != cls.__name__:
        raise ValueError(f"{path} holds a {payload.get('kind')!r} config, not {cls.__name__}")
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

"""`smalltts train`: the four trainers (teacher, ASR, SV, DMD2 distillation). Needs the train extra (torch).

smalltts train teacher --data data/train --out runs/teacher --preset small [--steps N] [--resume latest]
smalltts train asr     --data data/train --out runs/asr --preset small
smalltts train sv      --data data/train --out runs/sv --preset small
smalltts train distill --data data/train --out runs/distill --teacher runs/teacher --asr runs/asr --sv runs/sv
smalltts train vocoder --manifest data/synth/manifest.jsonl --out runs/vocoder   # the demo's mel codec (audio in)

Several GPUs (DDP, one process each), unchanged:  accelerate launch --multi_gpu -m smalltts.cli.main train teacher ...
CPU smoke test:  smalltts train teacher --data data/tiny --out /tmp/t --preset tiny --steps 20 --cpu

Flags override the preset's recipe (training.config.*_config_for); --config FILE starts from a saved config
(a run's config.json, old flat ones too). The configs check every range, so a bad flag is one error line.
torch and the trainers are imported inside the handler, never at CLI start-up.

On a GPU:  smalltts train teacher --preset full --data DIR --out RUN --precision bf16 --compile --grad-accum-steps 4
A SIGTERM (preemption) writes a checkpoint and exits 143; rerun with --resume latest.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from model.config import PRESETS
from smalltts.cli.main import CliError, import_training

TRAINERS = ("teacher", "asr", "sv", "distill", "vocoder")


PRECISION_CHOICES = ("auto", "bf16", "fp16", "fp32")
# Flags whose value goes to a config field of the same name (dashes -> underscores), group fields named flat.
COMMON_FIELDS = (
    "steps", "lr", "min_lr", "warmup_steps", "weight_decay", "grad_clip_norm", "grad_accum_steps", "log_every",
    "checkpoint_every", "keep_checkpoints", "seed", "precision",
)  # fmt: skip
TEACHER_FIELDS = ("text_drop_prob", "speaker_drop_prob")
DISTILL_FIELDS = (
    "asr_start_step", "sv_start_step", "scorer_updates", "backward_sim_start_step", "gan_start_step", "gan_weight",
    "critic_gan_weight", "asr_weight", "sv_weight", "text_cfg_scale", "speaker_cfg_scale",
)  # fmt: skip
LOADER_FLAGS = {
    "batch_size": "max_batch_size",
    "max_frames_per_batch": "max_frames_per_batch",
    "num_workers": "num_workers",
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, metavar="DIR", help="a built dataset folder")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="the run folder")
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        help="model size and recipe (default tiny; distill: the teacher's, which it must match)",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="start from a saved config (a run's config.json)")
    parser.add_argument("--steps", type=int, help="optimizer updates")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--min-lr", type=float, help="learning rate at the last step (cosine schedule)")
    parser.add_argument("--warmup-steps", type=int, help="linear learning-rate warmup")
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--grad-clip-norm", type=float, help="0 = no clipping")
    parser.add_argument("--batch-size", type=int, help="most clips per (micro-)batch")
    parser.add_argument("--max-frames-per-batch", type=int, help="most target frames per (micro-)batch")
    parser.add_argument("--grad-accum-steps", type=int, help="micro-batches per update (the update sees k batches)")
    parser.add_argument("--num-workers", type=int, help="DataLoader worker processes collating ahead")
    parser.add_argument("--log-every", type=int)
    parser.add_argument("--checkpoint-every", type=int, help="0 = only at the end (and on SIGTERM)")
    parser.add_argument("--keep-checkpoints", type=int, help="0 = keep all")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--precision", choices=PRECISION_CHOICES, help="fp16 trains with loss scaling")
    parser.add_argument(
        "--mixed-precision", choices=("auto", "no", "bf16"), help=argparse.SUPPRESS
    )  # the old name of --precision
    parser.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    parser.add_argument("--resume", metavar="latest|DIR", help="continue from this run's latest or a given checkpoint")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("train", help="train the teacher, ASR, SV or the distilled student (needs torch)")
    trainers = parser.add_subparsers(dest="trainer", required=True, metavar="TRAINER")

    teacher = trainers.add_parser("teacher", help="v-prediction teacher with CFG dropout and EMA")
    _common(teacher)
    teacher.add_argument("--init", type=Path, metavar="PATH", help="start from these DiT weights (e.g. the original's)")
    teacher.add_argument("--gradient-checkpointing", action="store_true")
    teacher.add_argument("--ema-decay", type=float, help="the EMA's decay (ema_beta)")
    teacher.add_argument("--text-drop-prob", type=float, help="CFG dropout of the phonemes")
    teacher.add_argument("--speaker-drop-prob", type=float, help="CFG dropout of the reference")

    for name, text in (("asr", "CTC phoneme recogniser on latents"), ("sv", "speaker embedding on latents")):
        _common(trainers.add_parser(name, help=text))

    distill = trainers.add_parser("distill", help="DMD2 distillation of the teacher into the 4-step student")
    _common(distill)
    distill.add_argument("--teacher", type=Path, required=True, help="teacher run, checkpoint or teacher_ema.pt")
    distill.add_argument("--asr", type=Path, help="ASR run/checkpoint (CTC loss; off without it)")
    distill.add_argument("--sv", type=Path, help="SV run/checkpoint (speaker loss; off without it)")
    distill.add_argument("--asr-start-step", type=int)
    distill.add_argument("--sv-start-step", type=int)
    distill.add_argument("--scorer-updates", type=int)
    distill.add_argument("--backward-sim-start-step", type=int)
    distill.add_argument("--gan-start-step", type=int)
    distill.add_argument("--ema-decay", type=float, help="the student EMA's decay (ema_beta)")
    for flag in ("--gan-weight", "--critic-gan-weight", "--asr-weight", "--sv-weight"):
        distill.add_argument(flag, type=float, help="loss weight")
    distill.add_argument("--text-cfg-scale", type=float)
    distill.add_argument("--speaker-cfg-scale", type=float)

    vocoder = trainers.add_parser("vocoder", help="the offline mel codec's vocoder, from audio (training.vocoder)")
    vocoder.add_argument("--manifest", type=Path, required=True, help="a .jsonl/.tsv/.csv manifest of audio clips")
    vocoder.add_argument("--out", type=Path, required=True, metavar="DIR", help="the run folder")
    vocoder.add_argument("--preset", choices=PRESETS, default="demo", help="model preset whose codec is trained")
    for flag in ("--steps", "--batch-size", "--log-every", "--checkpoint-every", "--seed", "--max-clips"):
        vocoder.add_argument(flag, type=int)
    vocoder.add_argument("--lr", type=float)
    vocoder.add_argument("--resume", metavar="latest|DIR", help="continue from this run's latest or a given checkpoint")
    vocoder.add_argument("--cpu", action="store_true", help="accepted for symmetry; the vocoder trains on the CPU")
    parser.set_defaults(handler=run)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given, as flat config fields (training.config.with_overrides puts them in their groups)."""
    pairs = {name: getattr(args, name) for name in COMMON_FIELDS}
    if args.precision is None and args.mixed_precision is not None:
        pairs["precision"] = {"no": "fp32"}.get(args.mixed_precision, args.mixed_precision)
    if args.compile:
        pairs["compile"] = True
    if args.trainer == "teacher":
        pairs.update({name: getattr(args, name) for name in TEACHER_FIELDS})
        if args.gradient_checkpointing:
            pairs["gradient_checkpointing"] = True
    if args.trainer == "distill":
        pairs.update({name: getattr(args, name) for name in DISTILL_FIELDS})
    if args.trainer in ("teacher", "distill"):
        pairs["ema_beta"] = args.ema_decay
    return {key: value for key, value in pairs.items() if value is not None}


def build_config(args: argparse.Namespace, config_module: Any) -> Any:
    """The preset's recipe (or --config FILE) with the flags applied; a bad value raises ValueError."""
    factories = {
        "teacher": (config_module.teacher_config_for, config_module.TeacherConfig),
        "asr": (config_module.asr_config_for, config_module.AsrConfig),
        "sv": (config_module.sv_config_for, config_module.SvConfig),
        "distill": (config_module.distill_config_for, config_module.DistillConfig),
    }
    factory, cls = factories[args.trainer]
    if args.config is not None:
        cfg = config_module.with_overrides(config_module.load_config(args.config, cls), **_overrides(args))
    else:
        cfg = factory(args.preset or "tiny", **_overrides(args))
    loader = {field: getattr(args, flag) for flag, field in LOADER_FLAGS.items() if getattr(args, flag) is not None}
    return replace(cfg, loader=replace(cfg.loader, **loader)) if loader else cfg


def run_vocoder(args: argparse.Namespace) -> int:
    vocoder, loop, dataset = import_training("vocoder", "loop", "dataset", needs="training")
    try:
        cfg = vocoder.vocoder_config(
            preset=args.preset, steps=args.steps, batch_size=args.batch_size, log_every=args.log_every,
            checkpoint_every=args.checkpoint_every, seed=args.seed, max_clips=args.max_clips, lr=args.lr,
        )  # fmt: skip
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        result = vocoder.train_vocoder(cfg, args.manifest, args.out, resume=args.resume)
    except (loop.TrainingError, dataset.DatasetError, ValueError) as exc:
        raise CliError(str(exc)) from None
    sys.stdout.write(f"vocoder: {result.final_step} steps; codec folder {args.out / 'codec'}\n")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.trainer == "vocoder":
        return run_vocoder(args)
    config_module, trainer, loop, dataset = import_training("config", args.trainer, "loop", "dataset", needs="training")
    if args.trainer == "distill":
        # The distillation's sizes and hyper-parameters follow the teacher's preset, never a default.
        try:
            preset = trainer.teacher_preset(args.teacher)
        except (loop.TrainingError, OSError) as exc:
            raise CliError(f"--teacher: {exc}") from None
        if args.preset is not None and args.preset != preset:
            raise CliError(f"--preset {args.preset} disagrees with the teacher's preset {preset}; leave it out")
        args.preset = preset
    try:
        cfg = build_config(args, config_module)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    common = {"resume": args.resume, "cpu": args.cpu}
    try:
        if args.trainer == "teacher":
            result = trainer.train_teacher(cfg, args.data, args.out, init_weights=args.init, **common)
        elif args.trainer == "asr":
            result = trainer.train_asr(cfg, args.data, args.out, **common)
        elif args.trainer == "sv":
            result = trainer.train_sv(cfg, args.data, args.out, **common)
        else:
            result = trainer.train_distill(
                cfg, args.data, args.out, teacher=args.teacher, asr=args.asr, sv=args.sv, **common
            )
    except (loop.TrainingError, dataset.DatasetError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if os.environ.get("RANK", "0") == "0":  # under torchrun / accelerate launch every rank gets here
        stopped = " (stopped by SIGTERM; continue with --resume latest)" if result.preempted else ""
        sys.stdout.write(f"{args.trainer}: {result.final_step} steps; checkpoint {result.checkpoint_dir}{stopped}\n")
    return 143 if result.preempted else 0  # 128 + SIGTERM, as a killed process would report

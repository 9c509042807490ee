"""`smalltts train`: the four trainers (teacher, ASR, SV, DMD2 distillation). Needs the train extra (torch).

smalltts train teacher --data data/train --out runs/teacher --preset small [--steps N] [--resume latest]
smalltts train asr     --data data/train --out runs/asr --preset small
smalltts train sv      --data data/train --out runs/sv --preset small
smalltts train distill --data data/train --out runs/distill --teacher runs/teacher --asr runs/asr --sv runs/sv
smalltts train vocoder --manifest data/synth/manifest.jsonl --out runs/vocoder   # the demo's mel codec (audio in)

Several GPUs (DDP, one process each), unchanged:  accelerate launch --multi_gpu -m smalltts.cli.main train teacher ...
CPU smoke test:  smalltts train teacher --data data/tiny --out /tmp/t --preset tiny --steps 20 --cpu

Flags override the preset's config (training.config.*_config_for); --config FILE starts from a saved config
(a run's config.json). torch and the trainers are imported inside the handler, never at CLI start-up.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from model.config import PRESETS
from smalltts.cli.main import CliError

TRAINERS = ("teacher", "asr", "sv", "distill", "vocoder")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, metavar="DIR", help="a built dataset folder")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="the run folder")
    parser.add_argument(
        "--preset", choices=PRESETS, help="model size (default tiny; distill: the teacher's, which it must match)"
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="start from a saved config (a run's config.json)")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int, help="most clips per batch")
    parser.add_argument("--max-frames-per-batch", type=int, help="most target frames per batch")
    parser.add_argument("--log-every", type=int)
    parser.add_argument("--checkpoint-every", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--mixed-precision", choices=("auto", "no", "bf16"))
    parser.add_argument("--resume", metavar="latest|DIR", help="continue from this run's latest or a given checkpoint")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("train", help="train the teacher, ASR, SV or the distilled student (needs torch)")
    trainers = parser.add_subparsers(dest="trainer", required=True, metavar="TRAINER")

    teacher = trainers.add_parser("teacher", help="v-prediction teacher with CFG dropout and EMA")
    _common(teacher)
    teacher.add_argument("--init", type=Path, metavar="PATH", help="start from these DiT weights (e.g. the original's)")
    teacher.add_argument("--gradient-checkpointing", action="store_true")

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
    distill.add_argument("--warmup-steps", type=int)

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
    pairs = {
        "steps": args.steps,
        "lr": args.lr,
        "log_every": args.log_every,
        "checkpoint_every": args.checkpoint_every,
        "seed": args.seed,
        "mixed_precision": args.mixed_precision,
    }
    if args.trainer == "teacher" and args.gradient_checkpointing:
        pairs["gradient_checkpointing"] = True
    if args.trainer == "distill":
        pairs.update(
            asr_start_step=args.asr_start_step,
            sv_start_step=args.sv_start_step,
            scorer_updates=args.scorer_updates,
            backward_sim_start_step=args.backward_sim_start_step,
            gan_start_step=args.gan_start_step,
            warmup_steps=args.warmup_steps,
        )
    for name in ("steps", "log_every", "checkpoint_every", "asr_start_step", "sv_start_step", "warmup_steps"):
        if name not in pairs:
            continue
        if pairs[name] is not None and pairs[name] < 0:
            raise CliError(f"--{name.replace('_', '-')} must be >= 0")
    return {key: value for key, value in pairs.items() if value is not None}


def build_config(args: argparse.Namespace, config_module: Any) -> Any:
    factories = {
        "teacher": (config_module.teacher_config_for, config_module.TeacherConfig),
        "asr": (config_module.asr_config_for, config_module.AsrConfig),
        "sv": (config_module.sv_config_for, config_module.SvConfig),
        "distill": (config_module.distill_config_for, config_module.DistillConfig),
    }
    factory, cls = factories[args.trainer]
    if args.config is not None:
        payload = json.loads(args.config.read_text())
        if payload.get("kind") != cls.__name__:
            raise CliError(f"{args.config} holds a {payload.get('kind')!r} config, not {cls.__name__}")
        cfg = config_module.config_from_dict(cls, payload["config"])
        cfg = replace(cfg, **_overrides(args))
    else:
        cfg = factory(args.preset or "tiny", **_overrides(args))
    loader = cfg.loader
    if args.batch_size is not None:
        loader = replace(loader, max_batch_size=args.batch_size)
    if args.max_frames_per_batch is not None:
        loader = replace(loader, max_frames_per_batch=args.max_frames_per_batch)
    if args.batch_size is not None and args.batch_size < 1:
        raise CliError("--batch-size must be >= 1")
    return replace(cfg, loader=loader)


def run_vocoder(args: argparse.Namespace) -> int:
    try:
        vocoder = importlib.import_module("training.vocoder")
        loop = importlib.import_module("training.loop")
        dataset = importlib.import_module("training.dataset")
    except ImportError as exc:
        raise CliError(
            f"training needs the train extra ({exc.name or exc} is missing): pip install 'smalltts[train]'"
        ) from None
    for name in ("steps", "batch_size", "log_every", "checkpoint_every", "max_clips"):
        value = getattr(args, name)
        if value is not None and value < (1 if name in ("batch_size", "max_clips") else 0):
            raise CliError(f"--{name.replace('_', '-')} must be >= {1 if name in ('batch_size', 'max_clips') else 0}")
    cfg = vocoder.vocoder_config(
        preset=args.preset, steps=args.steps, batch_size=args.batch_size, log_every=args.log_every,
        checkpoint_every=args.checkpoint_every, seed=args.seed, max_clips=args.max_clips, lr=args.lr,
    )  # fmt: skip
    try:
        result = vocoder.train_vocoder(cfg, args.manifest, args.out, resume=args.resume)
    except (loop.TrainingError, dataset.DatasetError, ValueError) as exc:
        raise CliError(str(exc)) from None
    sys.stdout.write(f"vocoder: {result.final_step} steps; codec folder {args.out / 'codec'}\n")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.trainer == "vocoder":
        return run_vocoder(args)
    try:
        config_module = importlib.import_module("training.config")
        trainer = importlib.import_module(f"training.{args.trainer}")
        loop = importlib.import_module("training.loop")
        dataset = importlib.import_module("training.dataset")
    except ImportError as exc:
        raise CliError(
            f"training needs the train extra ({exc.name or exc} is missing): pip install 'smalltts[train]'"
        ) from None
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
    except (loop.TrainingError, dataset.DatasetError) as exc:
        raise CliError(str(exc)) from None
    if os.environ.get("RANK", "0") == "0":  # under torchrun / accelerate launch every rank gets here
        sys.stdout.write(f"{args.trainer}: {result.final_step} steps; checkpoint {result.checkpoint_dir}\n")
    return 0

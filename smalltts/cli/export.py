"""`smalltts export`: write a model folder (dmd/ + codec/ ONNX graphs with sidecars). Needs torch.

smalltts export --preset tiny --random --out /tmp/smalltts-tiny
smalltts export --checkpoint runs/distill --out models/mine [--codec-dir DIR]   # a trained checkpoint
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from model.config import PRESETS
from smalltts.cli.main import CliError, import_training


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("export", help="export a model folder to ONNX (needs torch)")
    parser.add_argument("--preset", choices=PRESETS, default="tiny")
    parser.add_argument("--random", action="store_true", help="random (untrained) weights, seeded by --seed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument(
        "--checkpoint", type=Path, metavar="PATH", help="a trained checkpoint: weights file, checkpoint or run folder"
    )
    parser.add_argument("--codec-dir", type=Path, metavar="DIR", help="codec/ folder (default: the training data's)")
    parser.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="the model's default sampler steps (teacher: DDIM, default 16; student: default 4)",
    )
    parser.add_argument(
        "--guidance", type=float, default=1.0, metavar="S", help="teacher only: text guidance scale (default 1 = off)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.checkpoint is not None:
        return run_checkpoint(args)
    if not args.random:
        raise CliError("nothing to export from: pass --checkpoint PATH (a trained model) or --random")
    try:
        # torch stays out of the serving path: only this handler imports the exporter.
        export = importlib.import_module("model.export")
    except ImportError as exc:
        raise CliError(f"export needs torch ({exc.name or exc} is missing): pip install 'smalltts[train]'") from None
    out = export.build_random_model_dir(args.preset, args.out, seed=args.seed)
    sys.stdout.write(f"exported a random {args.preset} model (untrained) to {out}\n")
    return 0


def run_checkpoint(args: argparse.Namespace) -> int:
    [export_onnx] = import_training("export_onnx", needs="export --checkpoint")
    try:
        result = export_onnx.export_checkpoint(
            args.checkpoint, args.out, codec_dir=args.codec_dir, steps=args.steps, guidance_scale=args.guidance
        )
    except (export_onnx.ExportError, export_onnx.TrainingError) as exc:
        raise CliError(str(exc)) from None
    sys.stdout.write(
        f"exported {result.role} weights {result.weights} to {result.out_dir} "
        f"(torch/ONNX max diff {result.max_abs_diff:.1e}; the runtime loaded it and synthesized "
        f"{result.synthesized_s:.1f} s)\n"
    )
    return 0

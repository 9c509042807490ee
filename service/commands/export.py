"""`smalltts export`: write a model folder (dmd/ + codec/ ONNX graphs with sidecars). Needs torch.

smalltts export --preset tiny --random --out /tmp/smalltts-tiny
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from model.config import PRESETS
from service.cli import CliError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("export", help="export a model folder to ONNX (needs torch)")
    parser.add_argument("--preset", choices=PRESETS, default="tiny")
    parser.add_argument("--random", action="store_true", help="random (untrained) weights, seeded by --seed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.random:
        raise CliError("nothing to export from: pass --random (exporting a trained checkpoint comes with training)")
    try:
        # torch stays out of the serving path: only this handler imports the exporter.
        export = importlib.import_module("model.export")
    except ImportError as exc:
        raise CliError(f"export needs torch ({exc.name or exc} is missing): pip install 'smalltts[train]'") from None
    out = export.build_random_model_dir(args.preset, args.out, seed=args.seed)
    sys.stdout.write(f"exported a random {args.preset} model (untrained) to {out}\n")
    return 0

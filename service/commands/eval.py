"""`smalltts eval`: phoneme error rate (our ASR) and speaker similarity (pretrained encoder) on held-out clips.

smalltts eval --model models/mine --data data/heldout --asr runs/asr [--limit 50] [--json] [--out eval.json]

Needs the train extra (torch for the ASR); imported inside the handler.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from service.cli import CliError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("eval", help="intelligibility (PER) and speaker similarity on held-out data")
    parser.add_argument("--model", type=Path, required=True, metavar="DIR", help="an exported model folder")
    parser.add_argument("--data", type=Path, required=True, metavar="DIR", help="a built held-out dataset")
    parser.add_argument("--asr", type=Path, metavar="PATH", help="ASR checkpoint (asr.pt, checkpoint or run folder)")
    parser.add_argument("--limit", type=int, default=50, help="clips to evaluate (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    parser.add_argument("--out", type=Path, metavar="FILE", help="also write the JSON report here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be >= 1")
    try:
        evaluation = importlib.import_module("training.evaluation")
        dataset = importlib.import_module("training.dataset")
        loop = importlib.import_module("training.loop")
    except ImportError as exc:
        raise CliError(
            f"eval needs the train extra ({exc.name or exc} is missing): pip install 'smalltts[train]'"
        ) from None
    try:
        report = evaluation.evaluate(args.model, args.data, asr=args.asr, limit=args.limit, seed=args.seed)
    except (dataset.DatasetError, loop.TrainingError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if args.out is not None:
        evaluation.write_report(report, args.out)
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(report.table())
    return 0

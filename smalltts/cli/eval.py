"""`smalltts eval`: phoneme error rate (our ASR) and speaker similarity (pretrained encoder).

smalltts eval --model models/mine --data data/heldout --asr runs/asr [--limit 50] [--json] [--out eval.json]
smalltts eval --pairs rows.jsonl [--json]      # score any audio: {"audio": path, "text": str, "ref": optional path}

`--data` makes the model speak a held-out dataset's transcripts and scores that. `--pairs` scores audio that
already exists (any system's, espeak-ng's, a recording), each row by the shipped evaluation ASR (training/
demo_state/asr.pt, reading the bundled demo codec's latents) and, with a `ref`, by speaker similarity.
Needs the train extra (torch for the ASR); imported inside the handler.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from smalltts.cli.main import CliError, import_training


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("eval", help="intelligibility (PER) and speaker similarity of a model or of audio")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, metavar="DIR", help="a built held-out dataset (the model speaks it)")
    source.add_argument("--pairs", type=Path, metavar="FILE", help=".jsonl rows {audio, text, ref?} to score")
    parser.add_argument(
        "--model", type=Path, metavar="DIR", help="an exported model folder (--pairs: whose codec the ASR reads)"
    )
    parser.add_argument(
        "--asr",
        type=Path,
        metavar="PATH",
        help="ASR checkpoint (asr.pt, checkpoint or run folder); --pairs: the shipped one",
    )
    parser.add_argument("--limit", type=int, default=50, help="clips to evaluate (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    parser.add_argument("--out", type=Path, metavar="FILE", help="also write the JSON report here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be >= 1")
    evaluation, dataset, loop = import_training("evaluation", "dataset", "loop", needs="eval")
    if args.pairs is not None:
        return run_pairs(args, evaluation, loop)
    if args.model is None:
        raise CliError("--data needs --model DIR (the model folder to evaluate)")
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


def run_pairs(args: argparse.Namespace, evaluation: object, loop: object) -> int:
    from model.runtime.assets import demo_dir

    model_dir = args.model if args.model is not None else demo_dir()
    asr = args.asr if args.asr is not None else evaluation.DEFAULT_EVAL_ASR  # type: ignore[attr-defined]
    if not Path(asr).exists():
        raise CliError(f"--asr {asr}: not found")
    try:
        rows = evaluation.read_pairs(args.pairs)  # type: ignore[attr-defined]
        report = evaluation.score_pairs(rows, model_dir=model_dir, asr=asr)  # type: ignore[attr-defined]
    except (evaluation.PairsError, loop.TrainingError) as exc:  # type: ignore[attr-defined]
        raise CliError(f"eval --pairs: {exc}") from None
    except ValueError as exc:
        raise CliError(f"eval --pairs: {exc}") from None
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
        return 0
    width = max(len(Path(row["audio"]).name) for row in report["rows"])
    for row in report["rows"]:
        sim = f"{row['similarity']:.3f}" if row["similarity"] is not None else "n/a"
        sys.stdout.write(f"{Path(row['audio']).name:<{width}}  PER {row['per']:.3f}  similarity {sim}\n")
    sys.stdout.write(f"mean PER {report['mean_per']:.3f} over {len(report['rows'])} rows\n")
    return 0

"""`smalltts batch`: speak every row of a file into a folder, in real batches (one runtime call per group).

    smalltts batch lines.txt --out-dir out/lines              # one text per line -> 0001.wav, 0002.wav, ...
    smalltts batch rows.jsonl --out-dir out/rows --ref voice.wav --batch-size 8

A `.jsonl` row is {"text": ..., "voice" (or "ref"): FILE, "duration": S, "seed": N, "steps": N,
"transcription": ..., "out": NAME}; only "text" is required. A row's voice is relative to the batch file, its
out to --out-dir; flags are the defaults of rows that leave a field out. Rows without a seed get a random one;
`manifest.jsonl` in the out dir records every file with its seed. A bad row is one line naming its line number
and the others still run; the exit status is 1 when any row failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from model.errors import InputError
from smalltts.api import PreparedUtterance, SmallTTS
from smalltts.cli.main import CliError
from smalltts.cli.model_option import add_model_argument, add_transcription_argument, warn_if_untrained
from smalltts.cli.rows import Row, RowDefaults, RowError, read_rows
from smalltts.cli.tts import open_tts

MANIFEST = "manifest.jsonl"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("batch", help="speak every line of a .txt or .jsonl file into a folder")
    parser.add_argument("file", type=Path, metavar="FILE", help=".txt (one text per line) or .jsonl rows")
    parser.add_argument("--out-dir", type=Path, required=True, metavar="DIR", help="where the audio files go")
    parser.add_argument("--ref", type=Path, default=None, metavar="FILE", help="voice of rows that name none")
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="default: estimated per row")
    parser.add_argument("--seed", type=int, default=None, metavar="N", help="default: random per row (recorded)")
    parser.add_argument("--steps", type=int, default=None, metavar="N", help="default: the model's own")
    add_transcription_argument(parser)
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="rows per runtime call (default 8)")
    add_model_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise CliError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not args.file.is_file():
        raise CliError(f"batch file not found: {args.file}")
    if args.ref is not None and not args.ref.is_file():
        raise CliError(f"reference file not found: {args.ref}")
    defaults = RowDefaults(args.ref, args.duration, args.seed, args.steps, args.transcription)
    try:
        rows, errors = read_rows(args.file, args.out_dir, defaults)
    except (ValueError, OSError) as exc:  # UnicodeDecodeError is a ValueError
        raise CliError(f"cannot read {args.file}: {exc}") from None
    total = len(rows) + len(errors)
    tts = open_tts(args.model)
    prepared: list[tuple[Row, PreparedUtterance]] = []
    for row in rows:
        try:
            prepared.append((row, tts.prepare(row.utterance)))
        except (InputError, ValueError, FileNotFoundError) as exc:
            errors.append(RowError(row.line, str(exc)))
    for error in sorted(errors, key=lambda e: e.line):
        _report(args.file, error)
    written, audio_s, elapsed_s = _synthesize(tts, prepared, args.file, args.out_dir, args.batch_size, errors)
    failed = sorted({error.line for error in errors})
    summary = f"wrote {written} of {total} rows to {args.out_dir}: {audio_s:.1f} s of audio in {elapsed_s:.1f} s"
    if audio_s > 0:
        summary += f" (real-time factor {elapsed_s / audio_s:.2f})"
    if failed:
        summary += f"; {len(failed)} failed (line{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))})"
    sys.stdout.write(summary + "\n")
    warn_if_untrained(tts.synthesizer)
    return 1 if failed else 0


def _synthesize(
    tts: SmallTTS,
    prepared: Sequence[tuple[Row, PreparedUtterance]],
    path: Path,
    out_dir: Path,
    batch_size: int,
    errors: list[RowError],
) -> tuple[int, float, float]:
    """Runs the prepared rows in groups; returns (files written, seconds of audio, seconds spent)."""
    # Rows of one step count and similar length share a call, so little of a batch is padding.
    ordered = sorted(prepared, key=lambda pair: (pair[1].request.num_steps or 0, pair[1].request.duration_s))
    written, audio_s = 0, 0.0
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        (out_dir / MANIFEST).open("w", encoding="utf-8") as manifest,
        tqdm(total=len(ordered), unit="row", disable=None, file=sys.stderr) as bar,
    ):
        for start in range(0, len(ordered), batch_size):
            group = ordered[start : start + batch_size]
            speeches = tts.render([item for _, item in group])
            for (row, _), speech in zip(group, speeches, strict=True):
                try:
                    saved = speech.save(row.out)
                except OSError as exc:
                    error = RowError(row.line, f"cannot write {row.out}: {exc.strerror or exc}")
                    errors.append(error)
                    bar.clear()
                    _report(path, error)
                    continue
                written += 1
                audio_s += speech.duration
                record = {"line": row.line, "text": speech.text, "out": str(saved), "seed": speech.seed}
                manifest.write(json.dumps(record | {"duration": round(speech.duration, 4)}) + "\n")
            bar.update(len(group))
    return written, audio_s, time.perf_counter() - started


def _report(path: Path, error: RowError) -> None:
    tqdm.write(f"smalltts: error: {path}:{error.line}: {error.message}", file=sys.stderr)

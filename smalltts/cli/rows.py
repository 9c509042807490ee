"""The rows of a `smalltts batch` file: a `.txt` (one text per line) or a `.jsonl` (one object per line).

Every problem is reported against its line number, so one bad row never stops the others.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.errors import InputError
from model.runtime.audio import format_from_path
from smalltts.api import Utterance

ROW_KEYS = frozenset({"text", "voice", "ref", "duration", "seed", "steps", "transcription", "out"})


@dataclass(frozen=True)
class Row:
    line: int  # 1-based line number in the batch file
    utterance: Utterance
    out: Path  # where its audio goes


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass(frozen=True)
class RowDefaults:
    """What the command line gives every row that leaves a field out."""

    voice: Path | None = None
    duration: float | None = None
    seed: int | None = None
    steps: int | None = None
    transcription: str | None = None


def read_rows(path: Path, out_dir: Path, defaults: RowDefaults) -> tuple[list[Row], list[RowError]]:
    """Parses the whole file; rows with a problem come back as RowErrors instead of Rows."""
    kind = path.suffix.lower()
    if kind not in (".txt", ".jsonl"):
        raise ValueError(f"cannot read {path}: a batch file ends in .txt (one text per line) or .jsonl")
    rows: list[Row] = []
    errors: list[RowError] = []
    claimed: dict[Path, int] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            fields = {"text": raw.strip()} if kind == ".txt" else _parse_object(raw)
            row = _build_row(number, fields, path.parent, out_dir, defaults)
        except (InputError, ValueError) as exc:
            errors.append(RowError(number, str(exc)))
            continue
        first = claimed.setdefault(row.out.resolve(), number)
        if first != number:
            errors.append(RowError(number, f"out {row.out} is already written by line {first}"))
            continue
        rows.append(row)
    return rows, errors


def _parse_object(raw: str) -> dict[str, Any]:
    try:
        fields = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(fields, dict):
        raise ValueError('a row must be a JSON object such as {"text": "Hello."}')
    unknown = sorted(set(fields) - ROW_KEYS)
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}; a row has {', '.join(sorted(ROW_KEYS))}")
    if "voice" in fields and "ref" in fields:
        raise ValueError("give either 'voice' or 'ref', not both")
    return fields


def _build_row(number: int, fields: dict[str, Any], base: Path, out_dir: Path, defaults: RowDefaults) -> Row:
    text = fields.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("'text' must be a non-empty string")
    voice_name = _optional(fields, "voice", str) if "voice" in fields else _optional(fields, "ref", str)
    # A row's voice is relative to the batch file, so a folder of clips and its list travel together.
    voice = base / voice_name if voice_name is not None else defaults.voice
    duration = _optional(fields, "duration", float)
    if duration is not None and not math.isfinite(duration):
        raise ValueError("'duration' must be a finite number of seconds")
    seed = _optional(fields, "seed", int)
    steps = _optional(fields, "steps", int)
    transcription = _optional(fields, "transcription", str)
    out_name = _optional(fields, "out", str)
    out = out_dir / out_name if out_name is not None else out_dir / f"{number:04d}.wav"
    format_from_path(out)
    utterance = Utterance(
        text,
        voice=voice,
        duration=duration if duration is not None else defaults.duration,
        seed=seed if seed is not None else defaults.seed,
        steps=steps if steps is not None else defaults.steps,
        transcription=transcription if transcription is not None else defaults.transcription,
    )
    return Row(number, utterance, out)


def _optional(fields: dict[str, Any], key: str, kind: type[Any]) -> Any:
    value = fields.get(key)
    if value is None:
        return None
    # JSON has one number type: 2 is a fine duration, 2.5 is not a seed, and true is neither.
    accepted = (int, float) if kind is float else (kind,)
    if isinstance(value, bool) or not isinstance(value, accepted):
        raise ValueError(
            f"{key!r} must be {'a number' if kind is float else 'an integer' if kind is int else 'a string'}"
        )
    return float(value) if kind is float else value

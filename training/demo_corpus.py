"""Splits a `smalltts dataset synth` corpus for the demo model: training voices, held-out sentences, held-out voices.

    python -m training.demo_corpus --corpus .smalltts/train/demo/corpus --heldout-voices 8

`dataset synth` writes manifest.jsonl (every voice's training clips) and heldout.jsonl (a few more sentences per
voice). The demo also needs voices never heard in training, so the last `--heldout-voices` speakers (in the
synth's own order, which is seeded) are moved out of training entirely:

    CORPUS/train.jsonl               training clips of the training voices
    CORPUS/heldout_sentences.jsonl   held-out sentences of the training voices
    CORPUS/heldout_voices.jsonl      every clip of the held-out voices (training and held-out sentences)
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def split_corpus(corpus_dir: str | Path, heldout_voices: int) -> dict[str, int]:
    """Writes the three manifests; returns their sizes and the voice counts."""
    corpus_dir = Path(corpus_dir)
    train = _read(corpus_dir / "manifest.jsonl")
    heldout_path = corpus_dir / "heldout.jsonl"
    heldout = _read(heldout_path) if heldout_path.is_file() else []
    speakers = list(dict.fromkeys(row["speaker"] for row in train))  # synth order
    if not 0 <= heldout_voices < len(speakers):
        raise ValueError(f"--heldout-voices must be in [0, {len(speakers) - 1}], got {heldout_voices}")
    unseen = set(speakers[len(speakers) - heldout_voices :])
    train_rows = [row for row in train if row["speaker"] not in unseen]
    _write(corpus_dir / "train.jsonl", train_rows)
    sizes = {"train": len(train_rows), "train_voices": len(speakers) - heldout_voices, "heldout_voices": heldout_voices}
    sentences = [row for row in heldout if row["speaker"] not in unseen]
    voices = [row for row in train + heldout if row["speaker"] in unseen]
    _write(corpus_dir / "heldout_sentences.jsonl", sentences)
    _write(corpus_dir / "heldout_voices.jsonl", voices)
    sizes.update(heldout_sentences=len(sentences), heldout_voice_clips=len(voices))
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a `smalltts dataset synth` output folder")
    parser.add_argument("--heldout-voices", type=int, default=8)
    args = parser.parse_args(argv)
    print(json.dumps(split_corpus(args.corpus, args.heldout_voices)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

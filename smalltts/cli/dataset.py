"""`smalltts dataset`: make an offline espeak-ng corpus, and build training shards from audio + transcripts.

smalltts dataset synth --out data/synth [--speakers 8] [--clips-per-speaker 12] [--heldout-clips-per-speaker 2]
smalltts dataset build --manifest data/synth/manifest.jsonl --codec-dir models/tiny/codec --out data/train
smalltts dataset build --audio-dir my_clips/ --codec-dir models/tiny/codec --out data/train --speaker-encoder none

Training code (numpy, onnxruntime, the text front end; never torch) is imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from smalltts.cli.main import CliError

SPEAKER_ENCODERS = ("resemblyzer", "speechbrain", "none")
TEXT_SOURCES = ("grammar", "wordnet", "fortunes")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("dataset", help="make training data: an espeak-ng corpus, webdataset shards")
    actions = parser.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")

    synth = actions.add_parser("synth", help="generate a multi-speaker corpus offline with espeak-ng")
    synth.add_argument("--out", type=Path, required=True, metavar="DIR")
    synth.add_argument("--speakers", type=int, default=8, help="distinct voices (accent x variant), default 8")
    synth.add_argument("--clips-per-speaker", type=int, default=12)
    synth.add_argument("--heldout-clips-per-speaker", type=int, default=2, help="written to heldout.jsonl")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument(
        "--text-source",
        choices=TEXT_SOURCES,
        default="grammar",
        help="training sentences: the small template grammar, or open-vocabulary English (WordNet's examples)",
    )
    synth.add_argument(
        "--heldout-text-source", choices=TEXT_SOURCES, default="grammar", help="held-out sentences (disjoint source)"
    )
    synth.add_argument("--min-words", type=int, default=4)
    synth.add_argument("--max-words", type=int, default=12)
    synth.set_defaults(handler=run_synth)

    build = actions.add_parser("build", help="encode audio + transcripts into webdataset shards of latents")
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, help=".jsonl (audio, text, speaker) or .tsv/.csv with a header")
    source.add_argument("--audio-dir", type=Path, help="audio files with same-stem .txt transcripts")
    build.add_argument("--codec-dir", type=Path, required=True, help="folder with the codec's encoder.onnx")
    build.add_argument("--out", type=Path, required=True, metavar="DIR")
    build.add_argument("--shard-size", type=int, default=256, help="clips per shard (the unit of resumption)")
    build.add_argument("--encode-batch-size", type=int, default=8)
    build.add_argument("--min-duration", type=float, default=0.4, metavar="SECONDS")
    build.add_argument("--max-duration", type=float, default=20.0, metavar="SECONDS")
    build.add_argument(
        "--speaker-encoder",
        choices=SPEAKER_ENCODERS,
        default="resemblyzer",
        help="pretrained encoder whose per-clip embedding is stored (SV targets, eval); none to skip",
    )
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    build.set_defaults(handler=run_build)


def run_synth(args: argparse.Namespace) -> int:
    from training.config import SynthCorpusConfig
    from training.corpus import CorpusError, synthesize_corpus
    from training.sentences import SentenceSourceError

    if args.heldout_clips_per_speaker < 0:
        raise CliError("--heldout-clips-per-speaker must be >= 0")
    try:
        cfg = SynthCorpusConfig(
            num_speakers=args.speakers,
            clips_per_speaker=args.clips_per_speaker,
            seed=args.seed,
            min_words=args.min_words,
            max_words=args.max_words,
            text_source=args.text_source,
            heldout_text_source=args.heldout_text_source,
        )
    except ValueError as exc:
        raise CliError(f"dataset synth: {exc}") from None
    try:
        manifest, heldout = synthesize_corpus(args.out, cfg, heldout_clips_per_speaker=args.heldout_clips_per_speaker)
    except (CorpusError, SentenceSourceError, ValueError) as exc:
        raise CliError(str(exc)) from None
    sys.stdout.write(f"wrote {manifest}" + (f" and {heldout}" if heldout else "") + "\n")
    return 0


def run_build(args: argparse.Namespace) -> int:
    from training.config import DatasetConfig
    from training.dataset import DatasetError, build_dataset, iter_sources
    from training.speaker_encoder import SpeakerEncoderError

    if args.shard_size < 1 or args.encode_batch_size < 1:
        raise CliError("--shard-size and --encode-batch-size must be >= 1")
    if not 0 < args.min_duration < args.max_duration:
        raise CliError("need 0 < --min-duration < --max-duration")
    cfg = replace(
        DatasetConfig(),
        codec_dir=str(args.codec_dir),
        shard_size=args.shard_size,
        encode_batch_size=args.encode_batch_size,
        min_duration_s=args.min_duration,
        max_duration_s=args.max_duration,
        speaker_encoder=args.speaker_encoder,
    )
    try:
        sources = list(iter_sources(args.manifest, args.audio_dir))
        report = build_dataset(sources, args.out, cfg, progress=not args.no_progress)
    except SpeakerEncoderError as exc:
        raise CliError(f"{exc} (or pass --speaker-encoder none)") from None
    except DatasetError as exc:
        raise CliError(str(exc)) from None
    summary = {
        key: report[key] for key in ("num_inputs", "num_kept", "num_skipped", "skipped_by_reason", "num_speakers")
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    sys.stdout.write(f"dataset in {args.out} (validation report: {args.out / 'report.json'})\n")
    return 0

"""`smalltts dataset`: make an offline espeak-ng corpus, and build training shards from audio + transcripts.

smalltts dataset synth --out data/synth [--speakers 8] [--clips-per-speaker 12] [--heldout-clips-per-speaker 2]
smalltts dataset build --input data/synth/manifest.jsonl --codec-dir models/tiny/codec --out data/train
smalltts dataset build --input LibriTTS_R/train-clean-100 --codec-dir MODEL/codec --out data/libritts --workers 8
smalltts dataset build --input Emilia/EN --codec-dir MODEL/codec --out data/emilia --num-shards 4 --shard-index 0
smalltts dataset build --input my_saved_dataset --corpus hf --split train --codec-dir MODEL/codec --out data/hf

`--corpus` (default auto) is the input's layout: manifest, audio-dir, libritts-r, emilia (webdataset tars of
mp3 + json) or hf (a `datasets` save_to_disk folder); training/corpora.py describes each. `--manifest FILE` and
`--audio-dir DIR` are the older spellings of `--input` with that layout.

Training code (numpy, onnxruntime, the text front end; torch only for a speaker encoder) is imported inside the
handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from smalltts.cli.main import CliError

SPEAKER_ENCODERS = ("resemblyzer", "speechbrain", "none")
CORPUS_KINDS = ("manifest", "audio-dir", "libritts-r", "emilia", "hf")  # training.corpora.CORPUS_KINDS
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
    source.add_argument(
        "--input",
        type=Path,
        metavar="PATH",
        help="the corpus: a manifest, a folder of audio, a LibriTTS-R tree, a .tar or a folder of them, "
        "or a saved Hugging Face dataset",
    )
    source.add_argument("--manifest", type=Path, help="= --input FILE --corpus manifest")
    source.add_argument("--audio-dir", type=Path, help="= --input DIR --corpus audio-dir (same-stem .txt transcripts)")
    build.add_argument(
        "--corpus",
        choices=("auto", *CORPUS_KINDS),
        default="auto",
        help="the input's layout; auto tells it from the path (default)",
    )
    build.add_argument("--split", help="hf: the split of a saved DatasetDict")
    build.add_argument("--audio-column", help="hf: the audio column (default: the Audio feature, or 'audio')")
    build.add_argument("--text-column", help="hf: the transcript column (default: text, transcript, sentence, ...)")
    build.add_argument("--speaker-column", help="hf: the speaker column (default: speaker, speaker_id, ...)")
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
    build.add_argument(
        "--workers", type=int, default=1, metavar="K", help="processes that decode, resample and phonemize (default 1)"
    )
    build.add_argument(
        "--num-shards",
        type=int,
        default=1,
        metavar="N",
        help="split the build N ways (N machines, same --input and --out): this run builds every N-th shard",
    )
    build.add_argument("--shard-index", type=int, default=0, metavar="I", help="which of the N ways, 0..N-1")
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
    from training.corpora import detect_corpus, read_corpus
    from training.dataset import DatasetError, build_dataset
    from training.speaker_encoder import SpeakerEncoderError

    if args.shard_size < 1 or args.encode_batch_size < 1 or args.workers < 1:
        raise CliError("--shard-size, --encode-batch-size and --workers must be >= 1")
    if not 0 < args.min_duration < args.max_duration:
        raise CliError("need 0 < --min-duration < --max-duration")
    if args.num_shards < 1 or not 0 <= args.shard_index < args.num_shards:
        raise CliError(f"need --num-shards >= 1 and 0 <= --shard-index < --num-shards, got {args.shard_index}")
    path, corpus = args.input, args.corpus
    for flag, given, kind in (("--manifest", args.manifest, "manifest"), ("--audio-dir", args.audio_dir, "audio-dir")):
        if given is not None:
            if corpus not in ("auto", kind):
                raise CliError(f"{flag} reads a {kind}; use --input with --corpus {corpus}")
            path, corpus = given, kind
    cfg = replace(
        DatasetConfig(),
        codec_dir=str(args.codec_dir),
        shard_size=args.shard_size,
        encode_batch_size=args.encode_batch_size,
        min_duration_s=args.min_duration,
        max_duration_s=args.max_duration,
        speaker_encoder=args.speaker_encoder,
    )
    hf_flags = {"--split": args.split, "--audio-column": args.audio_column, "--text-column": args.text_column,
                "--speaker-column": args.speaker_column}  # fmt: skip
    try:
        corpus = detect_corpus(path) if corpus == "auto" else corpus
        given = [flag for flag, value in hf_flags.items() if value is not None]
        if given and corpus != "hf":
            raise CliError(
                f"only a saved Hugging Face dataset (--corpus hf) takes {', '.join(given)}; {path} is a {corpus}"
            )
        sources = read_corpus(
            path,
            corpus,
            split=args.split,
            audio_column=args.audio_column,
            text_column=args.text_column,
            speaker_column=args.speaker_column,
        )
        report = build_dataset(
            sources,
            args.out,
            cfg,
            progress=not args.no_progress,
            workers=args.workers,
            num_parts=args.num_shards,
            part_index=args.shard_index,
        )
    except SpeakerEncoderError as exc:
        raise CliError(f"{exc} (or pass --speaker-encoder none)") from None
    except DatasetError as exc:
        raise CliError(str(exc)) from None
    keys = ("num_inputs", "num_kept", "num_skipped", "skipped_by_reason", "num_speakers", "complete")
    sys.stdout.write(json.dumps({key: report[key] for key in keys}) + "\n")
    if report["complete"]:
        sys.stdout.write(f"dataset in {args.out} (validation report: {args.out / 'report.json'})\n")
    else:
        sys.stdout.write(
            f"part {args.shard_index} of {args.num_shards} done; {report['num_shards_missing']} shards of the dataset "
            "are still missing: the run that finds them all writes index.json and report.json\n"
        )
    return 0

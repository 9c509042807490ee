"""`smalltts say`: speak a text in the voice of a reference clip and write an audio file.

smalltts say "Hello there [laughter]" --ref voice.wav --out out/hello.wav --seed 7
echo "Text from a pipe." | smalltts say - --out out/piped.wav      # "-" reads the text from stdin

Without --seed a random seed is drawn and printed, so a take worth keeping can be made again.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

import numpy as np

from model.runtime.audio import format_from_path, read_reference, write_audio
from model.runtime.synthesizer import TIMESTEP_TABLES, SynthesisRequest
from model.text import estimate_duration_s, tokenize
from smalltts.cli.main import CliError
from smalltts.cli.model_option import (
    UNTRAINED_NOTE,
    add_model_argument,
    add_transcription_argument,
    open_synthesizer,
    warn,
    warn_if_untrained,
)

DEFAULT_OUT = Path("out/say.wav")
# A model folder may ship a default voice (the bundled demo does: one of its held-out espeak-ng voices).
DEFAULT_REFERENCE = "reference.wav"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("say", help="speak TEXT in the voice of a reference clip")
    parser.add_argument(
        "text", metavar="TEXT", help="what to say ('-' reads it from stdin); [tags] such as [laughter] are allowed"
    )
    parser.add_argument(
        "--ref",
        type=Path,
        default=None,
        metavar="FILE",
        help="reference voice: audio (wav, flac, ogg, mp3; any rate, any channels) or .npy latents (frames, 64); "
        f"default: the model folder's {DEFAULT_REFERENCE} when it ships one (the bundled demo does)",
    )
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="seconds; default: estimated")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="N",
        help="noise seed; equal seeds, equal audio (default: random, printed)",
    )
    parser.add_argument(
        "--steps", type=int, default=None, metavar="N", help="denoiser steps (default: the model's own; 4 published)"
    )
    parser.add_argument(
        "--schedule",
        choices=TIMESTEP_TABLES,
        default="trained",
        help="student timesteps: trained (default) or original (a DDIM model ignores it)",
    )
    add_transcription_argument(parser)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="FILE", help="output .wav, .flac or .ogg")
    add_model_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    format_from_path(args.out)  # a bad suffix fails before any model work
    if args.ref is not None and not args.ref.is_file():
        raise CliError(f"reference file not found: {args.ref}")
    synthesizer = open_synthesizer(args.model)
    if args.ref is None:
        args.ref = synthesizer.model_dir / DEFAULT_REFERENCE
        if not args.ref.is_file():
            raise CliError(f"--ref FILE is required: the model at {synthesizer.model_dir} ships no {DEFAULT_REFERENCE}")
    text = sys.stdin.read() if args.text == "-" else args.text
    tokens = tokenize(text, max_tokens=synthesizer.max_tokens)
    token_ids = tokens.ids
    if args.transcription is not None:
        # As the original's SmallTTS.forward: the reference's words, then the text's, joined directly.
        token_ids = tokenize(args.transcription, max_tokens=synthesizer.max_tokens).ids + token_ids
    if args.ref.suffix.lower() == ".npy":
        try:
            ref_latents = np.load(args.ref, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read reference latents {args.ref}: {exc}") from None
    else:
        audio = read_reference(args.ref, synthesizer.sample_rate_hz, synthesizer.limits)
        ref_latents = synthesizer.encode_reference(audio)
    estimated = args.duration is None
    duration_s = estimate_duration_s(tokens) if estimated else args.duration
    request = SynthesisRequest(
        token_ids=token_ids,
        ref_latents=ref_latents,
        duration_s=duration_s,
        seed=args.seed if args.seed is not None else secrets.randbelow(2**31),  # as the service draws
        num_steps=args.steps,
        timestep_table=args.schedule,
    )
    [result] = synthesizer.synthesize_batch([request])
    path = write_audio(args.out, result.audio, result.sample_rate_hz)
    # Warnings come after the work, so that a failing command prints exactly one line.
    for message in tokens.warnings:
        warn(message)
    warn_if_untrained(synthesizer)
    note = "" if synthesizer.trained else f"; model is {UNTRAINED_NOTE}"
    steps = args.steps if args.steps is not None else synthesizer.default_steps
    sampler = args.schedule if synthesizer.sampler == "student" else synthesizer.sampler
    sys.stdout.write(
        f"wrote {path}: {result.duration_s:.2f} s ({result.num_frames} frames{', estimated' if estimated else ''}), "
        f"seed {result.seed}, {steps} steps ({sampler}), model {synthesizer.model_id} at {synthesizer.model_dir}"
        f"{note}\n"
    )
    return 0

"""`smalltts interactive`: type a line, hear it (the original's real-time loop), with the real-time factor.

    smalltts interactive [--ref FILE] [--seed N] [--duration S] [--out-dir out/interactive] [--model DIR]
    printf 'Hello there.\\nGood night.\\n' | smalltts interactive --out-dir out/lines    # files, no prompt

On a terminal each line is played on the default audio device when the optional `sounddevice` package is
installed (`pip install sounddevice`); otherwise, and whenever stdin is not a terminal, each line is written
to a numbered file whose path is printed. Commands: /voice FILE, /seed N|random, /duration S|auto,
/save FILE (the last line's audio), /help, /quit. A terminal keeps the session's lines in readline history.
Read from a pipe, the exit status is 1 when any line or command failed.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from model.errors import InputError
from smalltts.api import MAX_SEED, SmallTTS, Speech, Voice
from smalltts.cli.main import CliError
from smalltts.cli.model_option import add_model_argument, add_transcription_argument, warn_if_untrained
from smalltts.cli.tts import open_tts

HELP = "/voice FILE, /seed N|random, /duration S|auto, /save FILE, /help, /quit"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("interactive", help="speak each line typed (or piped), with its real-time factor")
    parser.add_argument("--ref", type=Path, default=None, metavar="FILE", help="voice (default: the model's own)")
    parser.add_argument("--seed", type=int, default=None, metavar="N", help="fixed seed (default: random per line)")
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="default: estimated per line")
    parser.add_argument("--steps", type=int, default=None, metavar="N", help="default: the model's own")
    add_transcription_argument(parser)
    parser.add_argument(
        "--out-dir", type=Path, default=Path("out/interactive"), metavar="DIR", help="where numbered files go"
    )
    parser.add_argument("--no-play", action="store_true", help="write files even when audio could be played")
    add_model_argument(parser)
    parser.set_defaults(handler=run)


class Session:
    """The loop's state: voice, seed, duration, the last speech, and the next file number."""

    def __init__(self, tts: SmallTTS, args: argparse.Namespace, player: ModuleType | None) -> None:
        self.tts = tts
        self.player = player
        self.voice: Voice | None = tts.voice(args.ref) if args.ref is not None else None
        self.seed: int | None = args.seed
        self.duration: float | None = args.duration
        self.steps: int | None = args.steps
        self.transcription: str | None = args.transcription
        self.out_dir: Path = args.out_dir
        self.last: Speech | None = None
        self.number = 0

    def handle(self, line: str) -> bool:
        """Runs one line; False when the session should end. Raises InputError/ValueError/OSError for mistakes."""
        if not line.startswith("/"):
            self.speak(line)
            return True
        command, _, argument = line[1:].partition(" ")
        argument = argument.strip()
        if command in ("quit", "exit", "q"):
            return False
        if command == "help":
            _say(HELP)
        elif command == "voice":
            self.voice = self.tts.voice(_required(argument, "/voice FILE"))
            _say(f"voice: {argument} ({self.voice.num_frames} frames)")
        elif command == "seed":
            self.seed = None if argument in ("", "random") else _seed(argument)
            _say(f"seed: {self.seed if self.seed is not None else 'random per line'}")
        elif command == "duration":
            self.duration = None if argument in ("", "auto") else self._duration(argument)
            _say(f"duration: {f'{self.duration:g} s' if self.duration is not None else 'estimated per line'}")
        elif command == "save":
            if self.last is None:
                raise ValueError("nothing to save yet: type a line first")
            _say(f"saved {self.last.save(_required(argument, '/save FILE'))}")
        else:
            raise ValueError(f"unknown command /{command}; commands: {HELP}")
        return True

    def speak(self, text: str) -> None:
        started = time.perf_counter()
        speech = self.tts.say(text, self.voice, self.duration, self.seed, self.steps, self.transcription)
        elapsed_s = time.perf_counter() - started
        self.last = speech
        facts = f"{speech.duration:.2f} s, seed {speech.seed}, real-time factor {elapsed_s / speech.duration:.2f}"
        for warning in speech.warnings:
            sys.stderr.write(f"smalltts: warning: {warning}\n")
        if self.player is not None:
            _say(f"playing {facts}")
            self.player.play(speech.samples, speech.sample_rate)
            self.player.wait()
            return
        _say(f"{speech.save(self._next_path())}: {facts}")

    def _next_path(self) -> Path:
        # Numbers continue past files an earlier session left, so nothing is overwritten.
        while True:
            self.number += 1
            path = self.out_dir / f"{self.number:04d}.wav"
            if not path.exists():
                return path

    def _duration(self, argument: str) -> float:
        try:
            value = float(argument)
        except ValueError:
            raise ValueError(f"/duration takes seconds or 'auto', got {argument!r}") from None
        limits = self.tts.synthesizer.limits
        if not (math.isfinite(value) and limits.min_duration_s <= value <= limits.max_duration_s):
            raise InputError(
                f"duration must be between {limits.min_duration_s:g} and {limits.max_duration_s:g} seconds",
                field="duration",
                code="duration_out_of_range",
            )
        return value


def run(args: argparse.Namespace) -> int:
    if args.ref is not None and not args.ref.is_file():
        raise CliError(f"reference file not found: {args.ref}")
    terminal = sys.stdin.isatty()
    tts = open_tts(args.model)
    warn_if_untrained(tts.synthesizer)
    player = _player() if terminal and not args.no_play else None
    session = Session(tts, args, player)
    if terminal:
        _enable_history()
        where = "played aloud" if player is not None else f"written to {args.out_dir}"
        _say(f"smalltts interactive: model {tts.synthesizer.model_id}; each line is {where}. {HELP}")
    failed = False
    for line in _lines(terminal):
        try:
            if not session.handle(line):
                break
        except (InputError, ValueError, OSError) as exc:
            failed = True
            sys.stderr.write(f"smalltts: error: {exc}\n")
            sys.stderr.flush()
    return 1 if failed and not terminal else 0


def _lines(terminal: bool) -> Iterator[str]:
    # A pipe is read as it arrives, so a producer that writes a line at a time hears each one at once.
    return _TerminalLines() if terminal else (line.strip() for line in sys.stdin if line.strip())


class _TerminalLines:
    """Lines typed at a prompt, through readline's line editing and history; ends at EOF (Ctrl-D)."""

    def __iter__(self) -> _TerminalLines:
        return self

    def __next__(self) -> str:
        while True:
            try:
                line = input("> ").strip()
            except EOFError:
                sys.stdout.write("\n")
                raise StopIteration from None
            if line:
                return line


def _enable_history() -> None:
    # Importing readline is what makes input() keep history and edit lines; not every platform has it.
    try:
        importlib.import_module("readline")
    except ImportError:
        pass


def _player() -> ModuleType | None:
    """The optional `sounddevice` module when it imports and finds an output device, else None (write files)."""
    try:
        player = importlib.import_module("sounddevice")
    except (ImportError, OSError):  # not installed, or installed without the PortAudio library
        return None
    try:
        player.query_devices(kind="output")
    except (player.PortAudioError, ValueError):  # no output device
        return None
    return player


def _required(argument: str, usage: str) -> str:
    if not argument:
        raise ValueError(f"usage: {usage}")
    return argument


def _seed(argument: str) -> int:
    try:
        seed = int(argument)
    except ValueError:
        raise ValueError(f"/seed takes an integer or 'random', got {argument!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    return seed


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()

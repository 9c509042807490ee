"""Options shared by the commands that run a model (say, info, batch, interactive): resolve, load, warn if untrained."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from model.runtime.assets import MODEL_DIR_ENV, AssetError, resolve_model_dir
from model.runtime.limits import RuntimeLimits
from model.runtime.synthesizer import Synthesizer
from service.settings import Settings
from smalltts.cli.main import CliError

UNTRAINED_NOTE = "untrained (random weights): the audio is noise, not speech"


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"model folder (dmd/ + codec/); default: ${MODEL_DIR_ENV}, the fetched published weights, "
        "the bundled demo model, else a random tiny model",
    )


def add_transcription_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--transcription",
        default=None,
        metavar="TEXT",
        help="what the reference says; its phonemes go before the text's, as the original's SmallTTS.forward "
        "(default: off, the text alone, as the original's scripts and server)",
    )


def open_synthesizer(model: Path | None) -> Synthesizer:
    """Loads the chosen model (resolving the default one); raises CliError with one line when it cannot."""
    try:
        synthesizer = Synthesizer.load(resolve_model_dir(model), limits=service_limits())
    except AssetError as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:  # a sidecar or graph that does not fit the runtime: the folder is broken
        raise CliError(f"cannot load the model: {exc}") from None
    return synthesizer


def service_limits() -> RuntimeLimits:
    """The service's limits (SMALLTTS_* settings), so a command accepts exactly what `serve` would."""
    try:
        return Settings().runtime_limits()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CliError(f"invalid settings: {problems}") from None


def warn_if_untrained(synthesizer: Synthesizer) -> None:
    if not synthesizer.trained:
        warn(f"model {synthesizer.model_id} at {synthesizer.model_dir} is {UNTRAINED_NOTE}")


def warn(message: str) -> None:
    sys.stderr.write(f"smalltts: warning: {message}\n")

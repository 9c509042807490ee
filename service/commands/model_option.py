"""The --model option shared by the commands that run a model (say, info): resolve, load, warn if untrained."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.runtime.assets import MODEL_DIR_ENV, AssetError, resolve_model_dir
from model.runtime.synthesizer import Synthesizer
from service.cli import CliError

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


def open_synthesizer(model: Path | None) -> Synthesizer:
    """Loads the chosen model (resolving the default one); raises CliError with one line when it cannot."""
    try:
        synthesizer = Synthesizer.load(resolve_model_dir(model))
    except AssetError as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:  # a sidecar or graph that does not fit the runtime: the folder is broken
        raise CliError(f"cannot load the model: {exc}") from None
    return synthesizer


def warn_if_untrained(synthesizer: Synthesizer) -> None:
    if not synthesizer.trained:
        warn(f"model {synthesizer.model_id} at {synthesizer.model_dir} is {UNTRAINED_NOTE}")


def warn(message: str) -> None:
    sys.stderr.write(f"smalltts: warning: {message}\n")

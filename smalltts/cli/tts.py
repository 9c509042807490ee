"""The SmallTTS that a command runs: the --model folder (or the default), the service's limits, one-line errors."""

from __future__ import annotations

from pathlib import Path

from smalltts.api import SmallTTS
from smalltts.cli.main import CliError
from smalltts.cli.model_option import service_limits


def open_tts(model: Path | None) -> SmallTTS:
    """Loads the model as `say` does; raises CliError with one line when it cannot."""
    limits = service_limits()
    try:
        return SmallTTS(model, limits=limits)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:  # a sidecar or graph that does not fit the runtime: the folder is broken
        raise CliError(f"cannot load the model: {exc}") from None

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from smalltts.cli.main import CliError
from smalltts.cli.model_option import (
    UNTRAINED_NOTE,
    add_model_argument,
    open_synthesizer,
    service_limits,
    warn_if_untrained,
)


def test_a_command_takes_the_services_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMALLTTS_MAX_STEPS", "7")
    assert service_limits().max_steps == 7


def test_invalid_settings_are_one_cli_line_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMALLTTS_MAX_STEPS", "0")
    with pytest.raises(CliError, match=r"^invalid settings: max_steps: "):
        service_limits()


def test_a_folder_that_is_no_model_is_a_cli_error(tmp_path: Path) -> None:
    (tmp_path / "dmd").mkdir()
    with pytest.raises(CliError):
        open_synthesizer(tmp_path)


def test_the_tiny_model_loads_and_is_flagged_untrained(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    synthesizer = open_synthesizer(tiny_model_dir)
    warn_if_untrained(synthesizer)
    assert capsys.readouterr().err == (
        f"smalltts: warning: model {synthesizer.model_id} at {synthesizer.model_dir} is {UNTRAINED_NOTE}\n"
    )


def test_model_argument_is_an_optional_path() -> None:
    parser = argparse.ArgumentParser()
    add_model_argument(parser)
    assert parser.parse_args([]).model is None
    assert parser.parse_args(["--model", "m"]).model == Path("m")

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.runtime.assets import check_model_dir
from smalltts.cli.main import main


def test_export_random_writes_a_complete_untrained_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "tiny"
    assert main(["export", "--preset", "tiny", "--random", "--seed", "3", "--out", str(out)]) == 0
    assert check_model_dir(out) == []
    sidecar = json.loads((out / "dmd" / "denoiser.json").read_text())
    assert sidecar["trained"] is False and sidecar["model"]["preset"] == "tiny"
    assert "untrained" in capsys.readouterr().out


def test_export_without_a_source_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--preset", "tiny", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--random" in err
    assert not (tmp_path / "x").exists()

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from smalltts.cli.main import main

pytest.importorskip("onnx")


def test_optimize_writes_a_folder_that_info_reports_as_int8(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tiny-int8"
    assert main(["optimize", str(tiny_model_dir), "--out", str(out), "--int8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["precision"] == "int8" and report["out"] == str(out)
    assert {row["graph"] for row in report["graphs"]} >= {"dmd/denoiser.onnx", "dmd/condition_encoder.onnx"}
    assert report["eval"] is None and "random weights" in report["eval_note"]  # nothing to hear in the tiny model
    assert report["out_bytes"] < report["src_bytes"]
    assert main(["info", "--model", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "int8"
    assert main(["info", "--model", str(out)]) == 0
    assert re.search(r"^precision +int8 \(codec/encoder\.onnx fp32\)$", capsys.readouterr().out, re.MULTILINE)


def test_optimize_prints_a_table_for_fp16(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["optimize", str(tiny_model_dir), "--out", str(tmp_path / "fp16"), "--fp16", "--no-eval"]) == 0
    out = capsys.readouterr().out
    assert "dmd/denoiser.onnx velocity" in out and "SNR" in out and "graphs on disk" in out


def test_optimize_mistakes_are_one_line(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["optimize", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), "--int8"]) == 2
    assert capsys.readouterr().err.startswith("smalltts: error: model folder")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    assert main(["optimize", str(tiny_model_dir), "--out", str(tmp_path / "taken"), "--int8"]) == 2
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["optimize", str(tiny_model_dir), "--out", str(tmp_path / "y")])  # a precision is required

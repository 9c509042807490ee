from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from smalltts.cli.main import main

KEYS = {
    "preset",
    "num_parameters",
    "sample_rate_hz",
    "hop_samples",
    "latent_dim",
    "providers",
    "accepts_batch",
    "trained",
    "model_dir",
    "model_id",
}


def test_info_json_is_one_object_with_the_facts(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--model", str(tiny_model_dir), "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    facts = json.loads(out)
    assert KEYS <= set(facts)
    assert facts["preset"] == "tiny" and facts["trained"] is False and facts["accepts_batch"] is True
    assert (facts["sample_rate_hz"], facts["hop_samples"], facts["latent_dim"]) == (24_000, 3200, 64)
    assert facts["model_dir"] == str(tiny_model_dir) and facts["num_parameters"] > 100_000
    assert "CPUExecutionProvider" in facts["providers"]


def test_info_text_says_plainly_that_the_model_is_untrained(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", "--model", str(tiny_model_dir)]) == 0
    captured = capsys.readouterr()
    assert "NO, untrained (random weights)" in captured.out
    assert "untrained" in captured.err
    # The service's limits, which say, batch and interactive enforce too.
    assert "0.5 to 30 s" in captured.out and "1 to 32" in captured.out


def test_info_on_a_published_layout_says_trained(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = shutil.copytree(tiny_model_dir, tmp_path / "published")
    for sidecar in published.rglob("*.json"):
        sidecar.unlink()
    assert main(["info", "--model", str(published), "--json"]) == 0
    captured = capsys.readouterr()
    facts = json.loads(captured.out)
    assert facts["trained"] is True and facts["model_id"] == "smallbraineng/smalltts" and facts["preset"] == "full"
    assert captured.err == ""


def test_info_on_an_incomplete_folder_names_the_missing_file(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = shutil.copytree(tiny_model_dir, tmp_path / "broken")
    (broken / "codec" / "decoder.onnx").unlink()
    assert main(["info", "--model", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "codec/decoder.onnx: missing" in err


def test_info_names_the_sampler_and_its_default_steps(
    tiny_model_dir: Path, ddim_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", "--model", str(tiny_model_dir)]) == 0
    assert "student, 4 steps unless a request says" in capsys.readouterr().out
    assert main(["info", "--model", str(ddim_model_dir)]) == 0
    assert "ddim, 12 steps unless a request says" in capsys.readouterr().out

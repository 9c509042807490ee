"""`smalltts eval --pairs`: any audio scored by the shipped evaluation ASR and speaker similarity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from model.runtime.assets import demo_dir
from smalltts.cli.main import main
from tests.training.isolation import fresh_accelerator_state, one_torch_thread  # noqa: F401  (autouse)
from training.corpus import speak


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    folder = tmp_path_factory.mktemp("pairs")
    speak("Could you pass me the salt, please?", "en-us+m3", 160, 50, folder / "spoken.wav")
    noise = np.random.default_rng(0).uniform(-0.3, 0.3, 16_000 * 2).astype(np.float32)
    sf.write(folder / "noise.wav", noise, 16_000)
    rows = [
        {
            "audio": "spoken.wav",
            "text": "Could you pass me the salt, please?",
            "ref": str(demo_dir() / "reference.wav"),
        },
        {"audio": "noise.wav", "text": "Could you pass me the salt, please?"},
    ]
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_pairs_are_scored_by_the_shipped_asr(pairs_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--pairs", str(pairs_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    spoken, noise = report["rows"]
    assert spoken["audio"].endswith("spoken.wav") and noise["audio"].endswith("noise.wav")
    assert spoken["per"] < 0.25 < 0.7 < noise["per"]  # espeak-ng speech is read; noise is not
    assert -1.0 <= spoken["similarity"] <= 1.0 and noise["similarity"] is None
    assert report["mean_per"] == pytest.approx((spoken["per"] + noise["per"]) / 2)


def test_a_bad_row_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"audio": "a.wav", "text": "hi"}\n')
    assert main(["eval", "--pairs", str(rows)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "rows.jsonl:1" in err and "not found" in err
    rows.write_text('{"text": "no audio"}\n')
    assert main(["eval", "--pairs", str(rows)]) == 2
    assert '"audio"' in capsys.readouterr().err
    assert main(["eval", "--data", str(tmp_path)]) == 2
    assert "--model" in capsys.readouterr().err

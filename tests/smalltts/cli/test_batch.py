"""`smalltts batch` end to end on the real tiny model graphs and the real espeak-ng front end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from model.runtime.synthesizer import StageTimings, SynthesisRequest, SynthesisResult, Synthesizer
from model.text import estimate_duration_s, tokenize
from smalltts import SmallTTS
from smalltts.cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[3]


def _frames(text: str) -> int:
    return math.ceil(estimate_duration_s(tokenize(text)) * 7.5 - 1e-9)


def _manifest(out_dir: Path) -> dict[int, dict[str, object]]:
    lines = (out_dir / "manifest.jsonl").read_text().splitlines()
    return {record["line"]: record for record in map(json.loads, lines)}


def test_a_text_file_speaks_each_line_as_say_would(
    tiny_model_dir: Path, tiny_tts: SmallTTS, voice_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("Hello there.\n\nA second line [laughter].\n")
    out_dir = tmp_path / "out"
    argv = ["batch", str(lines), "--out-dir", str(out_dir), "--ref", str(voice_file), "--seed", "5"]
    assert main([*argv, "--model", str(tiny_model_dir)]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["0001.wav", "0003.wav", "manifest.jsonl"]
    for name, text in (("0001.wav", "Hello there."), ("0003.wav", "A second line [laughter].")):
        samples, rate = sf.read(out_dir / name, dtype="float32")
        assert rate == 24_000 and samples.shape == (_frames(text) * 3200,)
        alone = tiny_tts.say(text, voice=voice_file, seed=5)
        assert np.allclose(samples, alone.samples, atol=2 / 32768)  # 16-bit PCM of the same audio
    assert {line: record["seed"] for line, record in _manifest(out_dir).items()} == {1: 5, 3: 5}
    assert capsys.readouterr().out.startswith(f"wrote 2 of 2 rows to {out_dir}")


def test_jsonl_rows_run_in_real_batches_and_bad_rows_are_named_by_line(
    tiny_model_dir: Path,
    voice_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "voices").mkdir()
    (tmp_path / "voices" / "me.wav").write_bytes(voice_file.read_bytes())
    rows = [
        {"text": "First.", "voice": "voices/me.wav", "seed": 1, "duration": 1.0, "out": "first.flac"},
        {"text": "Second.", "ref": "voices/me.wav", "duration": 2},
        {"text": "Too long.", "ref": "voices/me.wav", "duration": 99},
        "not json",
        {"text": "Third.", "voice": "voices/me.wav", "speed": 2},
        {"text": "Fourth.", "voice": "voices/missing.wav"},
        {"text": "Fifth.", "voice": "voices/me.wav", "transcription": "What I say.", "seed": 2},
        {"text": "Sixth.", "voice": "voices/me.wav", "out": "first.flac"},
        {"text": "Seventh.", "voice": "voices/me.wav", "seed": 3.5},
        {"text": "Eighth.", "voice": "voices/me.wav"},
    ]
    batch = tmp_path / "rows.jsonl"
    batch.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    calls: list[int] = []
    real = Synthesizer.synthesize_batch

    def counting(
        self: Synthesizer, requests: Sequence[SynthesisRequest], timings: StageTimings | None = None
    ) -> list[SynthesisResult]:
        calls.append(len(requests))
        return real(self, requests, timings)

    monkeypatch.setattr(Synthesizer, "synthesize_batch", counting)
    out_dir = tmp_path / "out"
    argv = ["batch", str(batch), "--out-dir", str(out_dir), "--batch-size", "3", "--model", str(tiny_model_dir)]
    assert main(argv) == 1
    assert calls == [3, 1]  # four good rows: one call of three, one of one
    captured = capsys.readouterr()
    errors = captured.err.splitlines()
    assert [line for line in errors if line.startswith("smalltts: error: ")] == errors[: len(errors) - 1]
    for number, message in [
        (3, "duration must be between 0.5 and 30 seconds"),
        (4, "not valid JSON"),
        (5, "unknown field 'speed'"),
        (6, "reference file not found"),
        (8, "already written by line 1"),
        (9, "'seed' must be an integer"),
    ]:
        assert any(line.startswith(f"smalltts: error: {batch}:{number}: ") and message in line for line in errors)
    assert "6 failed (lines 3, 4, 5, 6, 8, 9)" in captured.out and "wrote 4 of 10 rows" in captured.out
    manifest = _manifest(out_dir)
    assert sorted(manifest) == [1, 2, 7, 10]
    assert sf.info(out_dir / "first.flac").format == "FLAC" and sf.info(out_dir / "first.flac").frames == 8 * 3200
    assert sf.info(out_dir / "0002.wav").frames == 15 * 3200
    assert sf.info(out_dir / "0007.wav").frames == _frames("Fifth.") * 3200  # the transcription adds no time
    assert manifest[7]["seed"] == 2 and isinstance(manifest[10]["seed"], int)


def test_the_command_line_exit_status_and_file_errors(tiny_model_dir: Path, voice_file: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "smalltts", "batch"]
    good = tmp_path / "one.txt"
    good.write_text("Just one line.\n")
    ok = subprocess.run(
        [
            *command,
            str(good),
            "--out-dir",
            str(tmp_path / "o"),
            "--ref",
            str(voice_file),
            "--model",
            str(tiny_model_dir),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("wrote 1 of 1 rows") and (tmp_path / "o" / "0001.wav").is_file()
    wrong = tmp_path / "rows.csv"
    wrong.write_text("a,b\n")
    for path, message in ((wrong, "ends in .txt"), (tmp_path / "none.txt", "batch file not found")):
        bad = subprocess.run(
            [*command, str(path), "--out-dir", str(tmp_path / "x"), "--model", str(tiny_model_dir)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert bad.returncode == 2 and bad.stderr.startswith("smalltts: error: ") and message in bad.stderr
        assert bad.stderr.count("\n") == 1

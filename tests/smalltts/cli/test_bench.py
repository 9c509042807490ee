from __future__ import annotations

import json
from pathlib import Path

import pytest

from smalltts.cli.main import main


def test_bench_times_every_stage_batched_and_one_by_one(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--model", str(tiny_model_dir), "--durations", "1,2", "--batches", "1,3", "--out", str(out)]
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["machine"]["cpu"] and report["machine"]["usable_cores"] >= 1
    rows = report["rows"]
    assert [(r["duration_s"], r["batch"], r["mode"]) for r in rows] == [
        (d, b, m) for d in (1.0, 2.0) for b in (1, 3) for m in ("batched", "one_by_one")
    ]
    for row in rows:
        assert len(row["denoise_step_ms"]) == 4
        assert row["ref_encode_ms"] > 0 and row["condition_ms"] > 0 and row["decode_ms"] > 0
        assert row["audio_s"] == pytest.approx(row["batch"] * (8 if row["duration_s"] == 1.0 else 15) / 7.5)
    for row in rows[::2]:
        assert row["max_abs_diff"] <= 1e-4  # the batched audio equals the one-by-one audio
    printed = capsys.readouterr().out
    assert "machine:" in printed and "one_by_one" in printed and "step 4" in printed


def test_bench_rejects_bad_lists(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--model", str(tiny_model_dir), "--batches", "0,2"]) == 2
    assert "positive" in capsys.readouterr().err


def test_bench_samples_a_model_with_its_own_step_count(
    ddim_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--model", str(ddim_model_dir), "--durations", "1", "--batches", "1", "--repeats", "1"]
    assert main([*args, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert (report["settings"]["steps"], report["settings"]["sampler"]) == (12, "ddim")
    assert all(len(row["denoise_step_ms"]) == 12 for row in report["rows"])
    printed = capsys.readouterr().out
    assert "12 ddim steps" in printed and "step 4-12" in printed

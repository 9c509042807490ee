from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from smalltts.cli.bench import LengthBucket, draw_requests, largest_requests, parse_lengths, speedups
from smalltts.cli.main import CliError, main


def test_bench_compares_precisions_side_by_side(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--model", str(tiny_model_dir), "--precision", "fp32,int8", "--lengths", "1-2"]
    assert main([*args, "--batches", "1,3", "--repeats", "2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    machine = report["machine"]
    assert machine["cpu"] and machine["onnxruntime"] and machine["usable_cores"] >= 1
    assert [m["label"] for m in report["models"]] == ["fp32", "int8"]
    assert report["models"][1]["dir"].endswith("-int8") and report["models"][1]["made_by"]
    cells = report["cells"]
    assert [(c["batch"], c["variant"]) for c in cells] == [(1, "fp32"), (1, "int8"), (3, "fp32"), (3, "int8")]
    for cell in cells:
        assert cell["repeats"] == 2 and cell["synth_ms"]["n"] == 2
        assert cell["synth_ms"]["p50"] <= cell["synth_ms"]["p90"] <= cell["synth_ms"]["p99"]
        assert len(cell["stage_p50_ms"]["denoise_steps"]) == 4 and cell["stage_p50_ms"]["condition"] > 0
        # Drawn from 1-2 s: between 8 and 15 frames of 3,200 samples each at 24 kHz.
        assert cell["batch"] * 8 / 7.5 <= cell["audio_s_p50"] <= cell["batch"] * 15 / 7.5
    assert cells[0]["audio_rms_diff_vs_baseline"] is None and cells[1]["audio_rms_diff_vs_baseline"] >= 0
    assert [(s["variant"], s["batch"]) for s in report["speedups"]] == [("int8", 1), ("int8", 3)]
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    printed = capsys.readouterr().out
    assert "machine:" in printed and "int8" in printed and "step 4" in printed and "e2e p50" in printed


def test_bench_compares_any_folders_with_the_first_as_baseline(
    tiny_model_dir: Path, ddim_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--models", str(tiny_model_dir), str(ddim_model_dir), "--lengths", "1", "--batches", "2"]
    assert main([*args, "--repeats", "1", "--steps", "2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [m["dir"] for m in report["models"]] == [str(tiny_model_dir), str(ddim_model_dir)]
    assert report["settings"]["steps"] == 2
    assert all(len(c["stage_p50_ms"]["denoise_steps"]) == 2 for c in report["cells"])
    assert len(report["speedups"]) == 1


def test_bench_samples_a_model_with_its_own_step_count(
    ddim_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--model", str(ddim_model_dir), "--lengths", "1", "--batches", "1", "--repeats", "1"]
    assert main([*args, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert (report["settings"]["steps"], report["settings"]["sampler"]) == (12, "ddim")
    assert all(len(cell["stage_p50_ms"]["denoise_steps"]) == 12 for cell in report["cells"])
    assert "12 ddim steps" in capsys.readouterr().out


def test_bench_rejects_bad_arguments(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--model", str(tiny_model_dir), "--batches", "0,2"]) == 2
    assert "positive" in capsys.readouterr().err
    assert main(["bench", "--model", str(tiny_model_dir), "--precision", "fp32,int4"]) == 2
    assert "--precision" in capsys.readouterr().err
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        assert main(["bench", "--model", str(tiny_model_dir), "--precision", "fp32,trt"]) == 2
        assert "TensorRT" in capsys.readouterr().err


def test_length_buckets() -> None:
    assert parse_lengths("1.5-2.5, 4-6,10") == [LengthBucket(1.5, 2.5), LengthBucket(4, 6), LengthBucket(10, 10)]
    for bad in ("", "3-1", "a-b", "0-1"):
        with pytest.raises(CliError):
            parse_lengths(bad)


def test_drawn_requests_differ_in_voice_length_and_text() -> None:
    drawn = draw_requests(np.random.default_rng(0), LengthBucket(4, 6), 16, 24_000, 100)
    assert all(4 <= r.duration_s <= 6 for r in drawn) and len({r.duration_s for r in drawn}) == 16
    assert len({r.reference.tobytes() for r in drawn}) == 16  # a new voice each: no cache can hit
    assert all(3 * 24_000 <= r.reference.shape[0] <= 8 * 24_000 for r in drawn)
    assert len({len(r.token_ids) for r in drawn}) > 4 and all(0 < min(r.token_ids) for r in drawn)
    warm = largest_requests(LengthBucket(4, 6), 3, 24_000)
    assert all(r.duration_s == 6 for r in warm) and len({r.reference.tobytes() for r in warm}) == 3
    assert all(len(w.token_ids) >= max(len(r.token_ids) for r in drawn) for w in warm)


def test_speedups_divide_the_baseline_median_by_the_others() -> None:
    cells = [
        {"variant": "fp32", "lengths_s": [1, 2], "batch": 8, "synth_ms": {"p50": 300.0}},
        {"variant": "int8", "lengths_s": [1, 2], "batch": 8, "synth_ms": {"p50": 100.0}},
    ]
    assert speedups(cells, "fp32") == [
        {"variant": "int8", "baseline": "fp32", "lengths_s": [1, 2], "batch": 8, "synth_p50_speedup": 3.0}
    ]

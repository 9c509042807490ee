"""`model.gpu_check`: the CPU smoke run end to end, the judging of issue 16's bars, and (marked cuda) the GPU paths.

The tests marked `cuda` are what `make gpu-check` runs on a GPU machine with `--noconftest` (the suite's conftest
needs the training packages), so they use no fixture but pytest's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model.gpu_check import CellResult, GpuCheckConfig, TorchReference, draw_inputs, judge, main, percentiles

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cpu_smoke_run_writes_json_and_png(tmp_path: Path) -> None:
    out = tmp_path / "gc"
    argv = ["--device", "cpu", "--preset", "tiny", "--durations", "1", "--batches", "1,2", "--iterations", "2"]
    assert main([*argv, "--onnx", "on", "--out-dir", str(out)]) == 0
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["cuda_tests"]["status"] == "skipped"
    assert report["torch_reference"]["dtype"] == "float32" and report["torch_reference"]["mode"] == "eager"
    cells = {(cell["path"], cell["batch"]): cell for cell in report["cells"]}
    assert set(cells) == {("torch", 1), ("torch", 2), ("onnx", 1), ("onnx", 2)}
    for cell in cells.values():
        assert cell["ms"]["p50"] > 0 and cell["realtime_factor"] > 0 and cell["iterations"] >= 1
        assert list(cell["stage_ms"]) == ["conditions", "step 1", "step 2", "step 3", "step 4"]
    assert 0.75 * 2 <= cells[("torch", 2)]["audio_s"] <= 2 * 8 / 7.5  # two items of 75-100 % of 1 s
    assert report["checks"]["10s_batch1_ms"]["passed"] is None  # not measured, and said so
    assert report["checks"]["onnx_1s_batch2_over_torch"]["value"] > 0
    # Under I/O binding the cross K/V go to the device once per batch, not once per step (counted by the runtime).
    assert cells[("onnx", 2)]["kv_uploads_per_batch"] == 1
    assert report["checks"]["onnx_kv_uploads_per_batch"]["passed"] is True
    assert report["chart"] is None and (out / "gpu_check.png").read_bytes().startswith(b"\x89PNG")


def test_quick_flag_and_the_budget_guard(tmp_path: Path) -> None:
    argv = ["--device", "cpu", "--preset", "tiny", "--quick", "--onnx", "off", "--budget-s", "0"]
    assert main([*argv, "--out-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [(c["duration_s"], c["batch"]) for c in report["cells"]] == [(2.0, 1), (2.0, 2), (1.0, 1), (1.0, 2)]
    assert all(c["note"] == "skipped: time budget spent" and not c["ms"] for c in report["cells"])
    assert report["onnx"]["status"] == "skipped" and report["chart"].startswith("nothing measured")


def _cell(duration_s: float, batch: int, p50: float, path: str = "torch", audio_s: float = 0.0) -> CellResult:
    cell = CellResult(duration_s, batch, path, "graphs", ms={"p50": p50})
    cell.realtime_factor = audio_s / (p50 / 1000) if audio_s else None
    return cell


def test_judge_applies_the_issue_bars() -> None:
    cells = [
        _cell(10.0, 1, 20.0),
        _cell(10.0, 8, 45.0),  # 2.25x batch 1
        _cell(10.0, 32, 100.0, audio_s=320.0),  # 3,200x real time
        _cell(5.0, 1, 10.0),
        _cell(5.0, 8, 30.0),  # 3x batch 1: over the 2.5x bar
        _cell(10.0, 1, 31.0, path="onnx"),  # 1.55x the reference: over the 1.5x bar
    ]
    checks = judge(cells)
    assert checks["10s_batch1_ms"] == {"value": 20.0, "bar": "<= 25", "passed": True}
    assert checks["10s_batch32_realtime"]["passed"] is True
    assert checks["10s_batch8_over_batch1"]["passed"] is True
    assert checks["5s_batch8_over_batch1"] == {"value": 3.0, "bar": "<= 2.5", "passed": False}
    assert checks["onnx_10s_batch1_over_torch"]["passed"] is False
    assert judge([])["10s_batch1_ms"]["passed"] is None


def test_percentiles() -> None:
    assert percentiles([]) == {}
    summary = percentiles([float(x) for x in range(1, 101)])
    assert summary["p50"] == pytest.approx(50.5) and summary["p90"] == pytest.approx(90.1)
    assert summary["p99"] == pytest.approx(99.01) and summary["n"] == 100


@pytest.mark.cuda
@needs_cuda
def test_cuda_graph_replay_matches_eager() -> None:
    reference = TorchReference(GpuCheckConfig(preset="tiny", mode="graphs"), torch.device("cuda"))
    inputs = draw_inputs(reference.model, 2.0, 4, 4, torch.device("cuda"), reference.dtype, seed=0)
    with torch.inference_mode():
        eager = reference._eager(inputs).float()
        replay, mode = reference.prepare(inputs)
        graphed = replay().float()
    assert mode == "graphs", reference.notes
    assert torch.isfinite(graphed).all()
    torch.testing.assert_close(graphed, eager, atol=2e-2, rtol=2e-2)


@pytest.mark.cuda
@needs_cuda
def test_bf16_on_cuda_follows_fp32_on_cpu() -> None:
    cpu = TorchReference(GpuCheckConfig(device="cpu", preset="tiny", dtype="fp32"), torch.device("cpu"))
    gpu = TorchReference(GpuCheckConfig(preset="tiny", mode="eager"), torch.device("cuda"))
    inputs = draw_inputs(cpu.model, 2.0, 2, 4, torch.device("cpu"), torch.float32, seed=1)
    gpu_inputs = draw_inputs(gpu.model, 2.0, 2, 4, torch.device("cuda"), gpu.dtype, seed=1)
    with torch.inference_mode():
        expected = cpu._eager(inputs)
        got = gpu._eager(gpu_inputs).float().cpu()
    assert gpu.dtype == torch.bfloat16
    rel = (got - expected).norm() / expected.norm()
    assert rel < 0.1, f"bf16 on CUDA is {rel:.3f} away from fp32 on the CPU (relative L2)"

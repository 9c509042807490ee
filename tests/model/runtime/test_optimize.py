"""int8 and fp16 folders from the tiny model: the contract, the sidecars, batch parity, the parity report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model.runtime.assets import REQUIRED_FILES
from model.runtime.graph import OnnxGraph
from model.runtime.optimize import OptimizeError, optimize_model_dir, parity_report, snr_db
from model.runtime.synthesizer import Synthesizer
from tests.model.runtime.test_synthesizer import assert_batch_matches_one_by_one, varied_requests

pytest.importorskip("onnx")


@pytest.fixture(scope="module", params=["int8", "fp16"])
def optimized(request: pytest.FixtureRequest, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(f"tiny_{request.param}") / "model"
    return optimize_model_dir(tiny_model_dir, out, request.param)


def test_the_io_contract_is_the_sources(optimized: Path, tiny_model_dir: Path) -> None:
    for name in REQUIRED_FILES:
        before, after = OnnxGraph(tiny_model_dir / name), OnnxGraph(optimized / name)
        assert [(i.name, i.dtype) for i in after.inputs] == [(i.name, i.dtype) for i in before.inputs]
        assert after.output_names == before.output_names


def test_the_sidecars_record_the_precision_and_the_runtime_reports_it(optimized: Path) -> None:
    precision = json.loads((optimized / "dmd" / "denoiser.json").read_text())["precision"]
    synth = Synthesizer.load(optimized)
    assert synth.precision == precision and synth.summary()["precision"] == precision
    assert synth.graph_precisions["codec/encoder.onnx"] == "fp32"  # copied: voices encode as in fp32
    assert synth.graph_precisions["codec/decoder.onnx"] == precision
    assert synth.config.preset == "tiny" and synth.model_id == "random-tiny-seed0"


def test_a_batch_gives_the_same_audio_as_one_by_one_in_each_precision(optimized: Path) -> None:
    synth = Synthesizer.load(optimized)
    # fp32 and int8 (fixed activation scales): the bound of the fp32 test. fp16: the same bound in its own units, two
    # rounding steps of a half-precision sample near full scale (2 x 2^-11); a batch sums in another order.
    tolerance = 1e-3 if synth.precision == "fp16" else 1e-4
    assert_batch_matches_one_by_one(synth, varied_requests(synth), tolerance)


def test_the_parity_report_measures_every_converted_graph(optimized: Path, tiny_model_dir: Path) -> None:
    report = parity_report(tiny_model_dir, optimized)
    graphs = {row["graph"] for row in report.graphs}
    assert graphs == {"dmd/condition_encoder.onnx", "dmd/denoiser.onnx", "codec/decoder.onnx"}
    # Tiny random weights (widths 16-64) quantize poorly: a floor that catches a broken graph, not a quality bar
    # (the trained demo's PER and similarity are that; see the README).
    floor = 5.0 if report.precision == "int8" else 40.0
    assert all(row["snr_db"] > floor for row in report.graphs), report.table()
    assert report.end_to_end_snr_db > 0.0 and report.src_ms > 0.0
    assert "denoiser" in report.table() and json.dumps(report.to_dict())


def test_the_published_layout_gets_the_sidecars_the_runtime_infers(tiny_model_dir: Path, tmp_path: Path) -> None:
    published = tmp_path / "published"
    shutil.copytree(tiny_model_dir, published)
    for sidecar in published.rglob("*.json"):
        sidecar.unlink()
    out = optimize_model_dir(published, tmp_path / "int8", "int8")
    payload = json.loads((out / "dmd" / "denoiser.json").read_text())
    assert payload["precision"] == "int8" and payload["trained"] is True
    assert payload["model_id"] == "smallbraineng/smalltts" and payload["model"]["preset"] == "full"
    synth = Synthesizer.load(out)
    assert (synth.precision, synth.model_id, synth.config.codec.kind) == ("int8", "smallbraineng/smalltts", "vibevoice")


def test_what_cannot_be_converted_is_refused(tiny_model_dir: Path, optimized: Path, tmp_path: Path) -> None:
    with pytest.raises(OptimizeError, match="int8 or fp16"):
        optimize_model_dir(tiny_model_dir, tmp_path / "x", "fp32")
    with pytest.raises(OptimizeError, match="outside"):
        optimize_model_dir(tiny_model_dir, tiny_model_dir / "int8", "int8")
    with pytest.raises(OptimizeError, match="already"):
        optimize_model_dir(optimized, tmp_path / "again", "int8")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(OptimizeError, match="not empty"):
        optimize_model_dir(tiny_model_dir, tmp_path / "full", "fp16")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_snr_db() -> None:
    signal = np.ones(100)
    assert snr_db(signal, signal) == float("inf")
    assert abs(snr_db(signal, signal * 1.1) - 20.0) < 1e-9

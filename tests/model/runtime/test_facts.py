from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from model.runtime.facts import PUBLISHED_MODEL_ID, read_model_facts


def test_our_export_says_what_it_is(tiny_model_dir: Path) -> None:
    facts = read_model_facts(tiny_model_dir)
    assert facts.config.preset == "tiny" and facts.trained is False
    assert facts.model_id == "random-tiny-seed0"
    assert facts.precision == "fp32" and set(facts.graph_precisions.values()) == {"fp32"}


def test_the_published_layout_without_sidecars_is_the_trained_full_model_in_fp32(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "published"
    shutil.copytree(tiny_model_dir, folder)
    for sidecar in folder.rglob("*.json"):
        sidecar.unlink()
    facts = read_model_facts(folder)
    assert facts.config.preset == "full" and facts.config.codec.kind == "vibevoice"
    assert (facts.trained, facts.model_id, facts.precision) == (True, PUBLISHED_MODEL_ID, "fp32")


def _set_precision(folder: Path, graph: str, precision: str) -> None:
    sidecar = folder / graph.replace(".onnx", ".json")
    payload = json.loads(sidecar.read_text())
    payload["precision"] = precision
    sidecar.write_text(json.dumps(payload))


def test_the_precision_is_read_per_graph_and_the_denoisers_is_the_models(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    _set_precision(folder, "dmd/denoiser.onnx", "int8")
    _set_precision(folder, "codec/decoder.onnx", "fp16")
    facts = read_model_facts(folder)
    assert facts.precision == "int8"
    assert facts.graph_precisions == {
        "dmd/condition_encoder.onnx": "fp32",
        "dmd/denoiser.onnx": "int8",
        "codec/encoder.onnx": "fp32",
        "codec/decoder.onnx": "fp16",
    }
    _set_precision(folder, "dmd/denoiser.onnx", "int4")
    with pytest.raises(ValueError, match="precision"):
        read_model_facts(folder)


def test_a_codec_that_does_not_fit_the_model_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    sidecar = folder / "codec" / "decoder.json"
    payload = json.loads(sidecar.read_text())
    payload["model"]["codec"]["hop_samples"] = 640
    sidecar.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="hop_samples"):
        read_model_facts(folder)

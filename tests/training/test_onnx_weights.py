from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.onnx_weights import OnnxWeightsError, load_onnx_weights


def test_weights_read_back_from_an_exported_pair_equal_the_originals(tmp_path: Path) -> None:
    from model.export import build_random_model, export_model_dir

    model = build_random_model("tiny", seed=0)
    with torch.no_grad():  # as after training: no two parameters equal (the exporter merges equal constants)
        for param in model.parameters():
            param.add_(0.01 * torch.randn_like(param))
    export_model_dir(model, None, tmp_path / "m", trained=True, model_id="local/test")
    restored = load_onnx_weights(tmp_path / "m").state_dict()
    original = model.state_dict()
    assert set(restored) == set(original)
    for name, value in original.items():
        assert torch.equal(restored[name], value), name


def test_a_graph_that_lost_parameters_is_refused(tiny_model_dir: Path) -> None:
    # A random model's norm weights are all 1, which the exporter folds into one constant: not recoverable.
    with pytest.raises(OnnxWeightsError, match="not found in the ONNX graphs"):
        load_onnx_weights(tiny_model_dir)

"""Shared fixtures. torch is imported lazily inside fixtures so torch-free test modules never load it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Payments need a chain: tests that take payments configure them (tests/service/payment); all others run free.
os.environ.setdefault("SMALLTTS_PAYMENT__MODE", "off")

if TYPE_CHECKING:
    from model.nn.dit import DiTModel


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random `tiny` model folder (dmd/ + codec/ ONNX graphs with sidecars), exported once per session.

    Its weights equal `model.export.build_random_model("tiny", seed=0)` and its codec
    `StandinCodec(cfg.codec, seed=0)`, so tests can compare against torch.
    """
    from model.export import build_random_model_dir

    return build_random_model_dir("tiny", tmp_path_factory.mktemp("tiny_model"), seed=0)


@pytest.fixture
def tiny_model() -> DiTModel:
    """A fresh random `tiny` DiTModel in eval mode, with the same weights as `tiny_model_dir`."""
    from model.export import build_random_model

    return build_random_model("tiny", seed=0)


@pytest.fixture(scope="session")
def ddim_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model again, its sidecar saying what an exported teacher's does: sample with DDIM, 12 steps."""
    import json
    import shutil

    folder = tmp_path_factory.mktemp("ddim_model") / "model"
    shutil.copytree(tiny_model_dir, folder)
    sidecar = folder / "dmd" / "denoiser.json"
    payload = json.loads(sidecar.read_text())
    payload["model"]["schedule"] |= {"sampler": "ddim", "num_steps": 12}
    sidecar.write_text(json.dumps(payload))
    return folder

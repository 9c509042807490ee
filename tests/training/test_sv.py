from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training.config import SvConfig, sv_config_for
from training.dataset import DatasetError
from training.metrics import read_metrics
from training.sv import SvModel, cosine_loss, load_sv, train_sv


def test_embedding_ignores_padding() -> None:
    torch.manual_seed(0)
    model = SvModel(sv_config_for("tiny"), latent_dim=64).eval()
    x = torch.randn(1, 10, 64)
    padded = torch.cat((x, torch.randn(1, 5, 64) * 10), dim=1)
    with torch.no_grad():
        a = model(x, torch.tensor([10]))
        b = model(padded, torch.tensor([10]))
    assert a.shape == (1, 256)
    assert torch.allclose(a, b, atol=1e-4)


def test_cosine_loss_is_zero_for_parallel_vectors() -> None:
    v = torch.randn(3, 8)
    assert float(cosine_loss(v * 2.5, v)) == pytest.approx(0.0, abs=1e-6)
    assert float(cosine_loss(v, -v)) == pytest.approx(2.0, abs=1e-6)


def test_sv_trains_towards_the_pretrained_embeddings(sv_run: Path) -> None:
    rows = read_metrics(sv_run / "metrics.jsonl")
    assert rows and all(np.isfinite(row["loss"]) for row in rows)
    assert isinstance(load_sv(sv_run).cfg, SvConfig)


def test_sv_without_stored_embeddings_says_how_to_fix_it(
    tmp_path: Path, tiny_model_dir: Path, corpus_dir: Path
) -> None:
    from training.config import DatasetConfig
    from training.dataset import build_dataset, read_manifest

    data = tmp_path / "data"
    cfg = DatasetConfig(codec_dir=str(tiny_model_dir / "codec"), speaker_encoder="none")
    build_dataset(read_manifest(corpus_dir / "manifest.jsonl")[:2], data, cfg, progress=False)
    with pytest.raises(DatasetError, match="--speaker-encoder resemblyzer"):
        train_sv(sv_config_for("tiny", steps=1), data, tmp_path / "run", cpu=True)

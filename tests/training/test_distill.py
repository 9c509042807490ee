from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.config import preset_config
from training.config import DiscriminatorConfig, distill_config_for
from training.distill import Discriminator, dmd_gradient, frozen_call, train_distill
from training.metrics import read_metrics


def test_dmd_gradient_is_normalised_over_valid_frames_only() -> None:
    torch.manual_seed(0)
    p_real, p_fake = torch.randn(1, 6, 4), torch.randn(1, 6, 4)
    mask = torch.tensor([[True, True, True, True, False, False]])
    p_real_padded = p_real * mask[..., None]  # padded frames are zero, as in training
    grad = dmd_gradient(p_real_padded, p_fake * mask[..., None], mask)
    expected_scale = p_real[:, :4].abs().mean()  # the mean over valid frames, not all 6
    expected = (p_real[:, :4] - p_fake[:, :4]) / expected_scale
    assert torch.allclose(grad[:, :4], expected, atol=1e-6)
    assert float(grad[:, 4:].abs().sum()) == 0.0


def test_discriminator_reads_the_dit_width_and_masks_padding() -> None:
    model_cfg = preset_config("tiny")
    cfg = distill_config_for("tiny").discriminator
    disc = Discriminator(cfg, model_cfg).eval()
    assert disc.layers_proj.in_features == cfg.num_feature_layers * model_cfg.dit.dim
    assert disc.ref_proj.in_features == model_cfg.dit.dim
    full = Discriminator(DiscriminatorConfig(), preset_config("full"))
    assert full.layers_proj.in_features == 3 * 960 and full.ref_proj.in_features == 960  # bug 3: never 1024
    b, n, r, p, d = 2, 5, 3, 4, model_cfg.dit.dim
    args = (torch.randn(b, model_cfg.dit.depth, n, d), torch.randn(b, n, 64), torch.randn(b, r, d),
            torch.ones(b, r, dtype=torch.bool), torch.ones(b, n, dtype=torch.bool), torch.randint(1, 198, (b, p)),
            torch.rand(b))  # fmt: skip
    with torch.no_grad():
        logits = disc(*args)
    assert logits.shape == (b,) and torch.isfinite(logits).all()


def test_frozen_call_sends_gradient_to_inputs_only() -> None:
    layer = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3, requires_grad=True)
    frozen_call(layer, x).sum().backward()
    assert x.grad is not None and layer.weight.grad is None


def test_distill_runs_with_every_loss_switched_on(
    tmp_path: Path, dataset_dir: Path, teacher_run: Path, asr_run: Path, request: pytest.FixtureRequest
) -> None:
    try:
        sv_run: Path | None = request.getfixturevalue("sv_run")
    except pytest.skip.Exception:
        sv_run = None
    cfg = distill_config_for(
        "tiny", steps=3, log_every=1, checkpoint_every=0, asr_start_step=1, sv_start_step=1, scorer_updates=2
    )
    result = train_distill(cfg, dataset_dir, tmp_path / "run", teacher=teacher_run, asr=asr_run, sv=sv_run, cpu=True)
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert len(rows) == 3
    for row in rows:
        for key in ("student_dmd", "student_gan", "disc_loss", "scorer_loss", "dmd_grad_mag"):
            assert torch.isfinite(torch.tensor(row[key])), key
    assert "student_asr" in rows[-1] and "student_asr" not in rows[0]
    if sv_run is not None:
        assert "student_sv" in rows[-1]
    assert (result.checkpoint_dir / "student.pt").is_file()  # type: ignore[operator]

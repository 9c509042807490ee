from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model.config import preset_config
from training.config import DiscriminatorConfig, distill_config_for, with_overrides
from training.distill import (
    Conditioning,
    Discriminator,
    critic_losses,
    frozen_call,
    resolve_weights,
    student_input,
    student_x0,
    train_distill,
)
from training.dmd import dmd_gradient, lsgan_generator_loss
from training.loader import BatchStream, ClipDataset
from training.loop import TrainingError
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
    student = result.checkpoint_dir / "student.pt"  # type: ignore[operator]
    schedule = json.loads(student.with_suffix(".json").read_text())["model"]["schedule"]
    # The sidecar says how to sample it: the student loop at exactly its distillation timesteps, no guidance.
    assert schedule["sampler"] == "student" and schedule["num_steps"] == 4 and schedule["guidance_scale"] == 1.0
    assert schedule["student_timesteps"] == list(cfg.student_timesteps)


def test_a_resumed_distillation_repeats_the_same_losses(tmp_path: Path, dataset_dir: Path, teacher_run: Path) -> None:
    cfg = distill_config_for("tiny", steps=4, log_every=1, checkpoint_every=2, scorer_updates=1)
    train_distill(cfg, dataset_dir, tmp_path / "straight", teacher=teacher_run, cpu=True)
    train_distill(with_overrides(cfg, steps=2), dataset_dir, tmp_path / "split", teacher=teacher_run, cpu=True)
    train_distill(cfg, dataset_dir, tmp_path / "split", teacher=teacher_run, resume="latest", cpu=True)
    straight = {row["step"]: row for row in read_metrics(tmp_path / "straight" / "metrics.jsonl")}
    split = {row["step"]: row for row in read_metrics(tmp_path / "split" / "metrics.jsonl")}
    for step in (2, 3):
        for key in ("student_dmd", "scorer_loss", "disc_loss", "student_gan"):
            assert split[step][key] == pytest.approx(straight[step][key], rel=1e-5, abs=1e-8), (step, key)


def test_distillation_refuses_a_preset_other_than_the_teacher_s(
    tmp_path: Path, dataset_dir: Path, teacher_run: Path
) -> None:
    with pytest.raises(TrainingError, match="teacher is 'tiny'"):
        train_distill(distill_config_for("small", steps=1), dataset_dir, tmp_path / "run", teacher=teacher_run)


def _tiny_setup(dataset_dir: Path, teacher_run: Path) -> tuple[torch.nn.Module, Conditioning]:
    from model.nn.checkpoint import load_checkpoint

    teacher = load_checkpoint(resolve_weights(teacher_run))
    cfg = distill_config_for("tiny")
    batch = BatchStream(ClipDataset.load(dataset_dir), cfg.loader).batch_at(0)
    return teacher, Conditioning(batch)


def test_the_gan_loss_reaches_the_student_weights(dataset_dir: Path, teacher_run: Path) -> None:
    import copy

    teacher, cond = _tiny_setup(dataset_dir, teacher_run)
    cfg = distill_config_for("tiny")
    student, scorer = copy.deepcopy(teacher).train(), copy.deepcopy(teacher).train()
    disc = Discriminator(cfg.discriminator, teacher.cfg)
    gen = torch.Generator().manual_seed(0)
    z, t_k = student_input(student, cond, 2, cfg, teacher.cfg, gen, simulate=True)
    x0 = student_x0(student, z, t_k, cond, teacher.cfg)
    t = torch.full((cond.batch.size,), 0.5)
    _, features = frozen_call(scorer, x0, *cond.args, t, return_stacked_features=True)
    ref_seq, ref_mask = teacher.style_encoder(cond.batch.ref_latents, cond.batch.ref_latents_lengths)
    logits = frozen_call(disc, features, x0, ref_seq.detach(), ref_mask, cond.mask, cond.batch.phonemes, t)
    lsgan_generator_loss(logits).backward()
    grads = [p.grad for p in student.dit.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0  # the GAN term alone moves the student
    assert all(p.grad is None for p in scorer.parameters()) and all(p.grad is None for p in disc.parameters())


def test_the_critic_update_trains_the_fake_score_backbone_through_the_gan(dataset_dir: Path, teacher_run: Path) -> None:
    import copy

    teacher, cond = _tiny_setup(dataset_dir, teacher_run)
    cfg = distill_config_for("tiny")
    student, scorer = copy.deepcopy(teacher).eval(), copy.deepcopy(teacher).train()
    disc = Discriminator(cfg.discriminator, teacher.cfg)
    gen = torch.Generator().manual_seed(0)
    _, loss_disc = critic_losses(student, scorer, disc, teacher, cond, cfg, teacher.cfg, gen, True, True)
    assert loss_disc is not None
    loss_disc.backward()
    backbone = [p.grad for name, p in scorer.named_parameters() if "transformer_blocks" in name and p.grad is not None]
    assert backbone and sum(float(g.abs().sum()) for g in backbone) > 0
    assert all(p.grad is None for p in student.parameters())

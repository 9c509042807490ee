from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from model.config import preset_config
from model.nn.checkpoint import load_checkpoint
from tests.training.helpers import write_subset
from training.config import LoaderConfig, merged_model_config, teacher_config_for, with_overrides
from training.loader import BatchStream, ClipDataset
from training.loop import Ema, TrainingError
from training.metrics import read_metrics
from training.teacher import ConditionDrop, build_teacher, drop_conditions, teacher_loss, train_teacher


def test_cfg_dropout_removes_text_and_reference(dataset_dir: Path) -> None:
    batch = BatchStream(ClipDataset.load(dataset_dir), LoaderConfig(max_batch_size=4, num_buckets=1)).batch_at(0)
    drop = ConditionDrop(text=torch.tensor([True, False, False, False])[: batch.size],
                         speaker=torch.tensor([False, True, False, False])[: batch.size])  # fmt: skip
    out = drop_conditions(batch, drop)
    assert int(out.phonemes[0].abs().sum()) == 0 and int(out.phonemes_lengths[0]) == 0
    assert torch.equal(out.phonemes[1:], batch.phonemes[1:])
    if batch.size > 1:
        assert float(out.ref_latents[1].abs().sum()) == 0.0 and int(out.ref_latents_lengths[1]) == 0


def test_everything_dropped_gives_finite_loss_and_gradients(dataset_dir: Path) -> None:
    batch = BatchStream(ClipDataset.load(dataset_dir), LoaderConfig(max_batch_size=4, num_buckets=1)).batch_at(0)
    cfg = teacher_config_for("tiny", text_drop_prob=1.0, speaker_drop_prob=1.0)
    model_cfg = preset_config("tiny")
    model = build_teacher(model_cfg, seed=0)
    for layer in model.zero_initialised_layers():  # non-zero heads so gradients reach the encoders
        layer.reset_parameters()
    loss = teacher_loss(model, batch, cfg, model_cfg.schedule, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_the_teacher_overfits_one_small_batch(tmp_path: Path, dataset_dir: Path) -> None:
    # One bucket holding one batch of two clips: every step sees that batch with fresh t and noise. The DiT is
    # the tiny preset made 96 wide: at 48 (< 64 latent channels) it cannot even represent x_t itself, so the
    # noise part of the v target stays out of reach and the loss floors at ~1/3.5 of its start.
    loader = LoaderConfig(max_batch_size=2, num_buckets=1, max_frames_per_batch=10_000)
    one_batch = write_subset(dataset_dir, tmp_path / "one_batch", keep=2)
    cfg = teacher_config_for(
        "tiny", steps=80, lr=3e-3, warmup_steps=5, min_lr=3e-3, log_every=100, checkpoint_every=0,
        text_drop_prob=0.0, speaker_drop_prob=0.0, loader=loader, model_overrides={"dit": {"dim": 96, "head_dim": 48}},
    )  # fmt: skip
    train_teacher(cfg, one_batch, tmp_path / "run", cpu=True)
    model_cfg = merged_model_config("tiny", cfg.model_overrides)
    batch = BatchStream(ClipDataset.load(one_batch), loader).batch_at(0)

    def mean_loss(model: torch.nn.Module) -> float:
        # The same 16 draws of t and noise before and after: the drop is not luck of the draw.
        with torch.no_grad():
            draws = [torch.Generator().manual_seed(1000 + i) for i in range(16)]
            return sum(float(teacher_loss(model, batch, cfg, model_cfg.schedule, g)) for g in draws) / 16

    before = mean_loss(build_teacher(model_cfg, seed=cfg.run.seed))
    after = mean_loss(load_checkpoint(tmp_path / "run" / "checkpoints" / "step_0000080" / "teacher.pt"))
    assert before / after >= 5.0, (before, after)
    assert (tmp_path / "run" / "loss.png").is_file()


def test_resume_gives_the_same_next_step_loss(tmp_path: Path, dataset_dir: Path) -> None:
    cfg = teacher_config_for("tiny", steps=4, log_every=1, checkpoint_every=2, lr=1e-3, warmup_steps=2)
    train_teacher(cfg, dataset_dir, tmp_path / "straight", cpu=True)
    straight = read_metrics(tmp_path / "straight" / "metrics.jsonl")

    train_teacher(with_overrides(cfg, steps=2), dataset_dir, tmp_path / "split", cpu=True)
    train_teacher(cfg, dataset_dir, tmp_path / "split", resume="latest", cpu=True)
    split = read_metrics(tmp_path / "split" / "metrics.jsonl")
    by_step = {row["step"]: row["loss"] for row in split}
    assert by_step[2] == pytest.approx(straight[2]["loss"], rel=1e-6, abs=1e-9)
    assert by_step[3] == pytest.approx(straight[3]["loss"], rel=1e-6, abs=1e-9)


def test_checkpoints_hold_everything_and_a_fresh_run_refuses_an_old_folder(
    teacher_run: Path, dataset_dir: Path
) -> None:
    ckpt = teacher_run / "checkpoints" / "step_0000006"
    state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=False)
    assert state["step"] == 6 and set(state["state"]) == {"model", "ema", "optimizer", "scheduler", "loss_scale"}
    assert (ckpt / "rng_rank0.pt").is_file()
    assert json.loads((ckpt / "teacher_ema.json").read_text())["model"]["preset"] == "tiny"
    assert (teacher_run / "checkpoints" / "latest").read_text().strip() == ckpt.name
    assert all(torch.isfinite(torch.tensor(row["loss"])) for row in read_metrics(teacher_run / "metrics.jsonl"))
    with pytest.raises(TrainingError, match="already holds checkpoints"):
        train_teacher(teacher_config_for("tiny", steps=1), dataset_dir, teacher_run, cpu=True)


def test_ema_moves_towards_the_model_with_a_warmup() -> None:
    model = torch.nn.Linear(2, 2)
    ema = Ema(model, beta=0.99)
    with torch.no_grad():
        model.weight.add_(1.0)
    assert ema.decay() == 0.0  # the first update copies
    ema.update(model)
    assert torch.allclose(ema.shadow.weight, model.weight)
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert 0.0 < ema.decay() <= 0.99
    assert (ema.shadow.weight < model.weight).all()


def test_four_accumulated_micro_batches_update_like_one_batch_four_times_larger(
    tmp_path: Path, dataset_dir: Path
) -> None:
    # Batch B=1 with 4 accumulation steps against batch 4B: the same clips, t, noise and dropout per update, the
    # micro-batch losses weighted by their valid frames, so the updates agree up to float summation order.
    base = teacher_config_for(
        "tiny", steps=3, log_every=1, checkpoint_every=0, lr=1e-3, warmup_steps=1, precision="fp32",
        text_drop_prob=0.3, speaker_drop_prob=0.3,
    )  # fmt: skip
    micro = LoaderConfig(max_batch_size=1, max_frames_per_batch=10_000, num_buckets=1, max_ref_frames=16)
    accumulated = replace(base, loader=micro, run=replace(base.run, grad_accum_steps=4))
    large = replace(base, loader=replace(micro, max_batch_size=4))
    train_teacher(accumulated, dataset_dir, tmp_path / "accumulated", cpu=True)
    train_teacher(large, dataset_dir, tmp_path / "large", cpu=True)
    rows_a = read_metrics(tmp_path / "accumulated" / "metrics.jsonl")
    rows_b = read_metrics(tmp_path / "large" / "metrics.jsonl")
    for a, b in zip(rows_a, rows_b, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-3)
        assert a["frames_per_s"] > 0
    weights_a = torch.load(tmp_path / "accumulated" / "checkpoints" / "step_0000003" / "teacher.pt", weights_only=False)
    weights_b = torch.load(tmp_path / "large" / "checkpoints" / "step_0000003" / "teacher.pt", weights_only=False)
    for name, value in weights_a["model"].items():
        torch.testing.assert_close(value, weights_b["model"][name], rtol=1e-4, atol=1e-5, msg=name)


def test_fp16_trains_with_a_loss_scale_that_is_checkpointed(tmp_path: Path, dataset_dir: Path) -> None:
    cfg = teacher_config_for("tiny", steps=2, log_every=1, checkpoint_every=0, precision="fp16")
    result = train_teacher(cfg, dataset_dir, tmp_path / "run", cpu=True)
    assert all(torch.isfinite(torch.tensor(row["loss"])) for row in read_metrics(tmp_path / "run" / "metrics.jsonl"))
    state = torch.load(result.checkpoint_dir / "state.pt", map_location="cpu", weights_only=False)  # type: ignore[operator]
    assert state["state"]["loss_scale"]["scale"] > 0

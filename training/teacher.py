"""The teacher objective and trainer: v-prediction on the shifted cosine schedule (spec model.md §4.2).

Legend:
    b  batch
    n  latent frames
    c  latent channels
    p  phoneme tokens
    r  reference frames

    smalltts train teacher --data data/tiny --out runs/teacher --preset tiny --steps 200   # CPU smoke test

One step: t = sigmoid(N(0, 1)) per sample (logit-normal), x_t = alpha x0 + sigma eps, target v = alpha eps -
sigma x0, loss = masked MSE over valid frames. CFG dropout (independent per sample) removes the text
(phonemes 0, mask all False) or the speaker (reference zeroed, length 0); the attention layers return zeros
for such all-masked rows instead of NaN (bug 20). AdamW, linear warmup then cosine, gradient clipping, an EMA
of the weights (the EMA is what distillation starts from), bf16 autocast on a GPU (fp16 with loss scaling
where bf16 is missing).

Gradient accumulation (`--grad-accum-steps k`): a step's batch holds k micro-batches' clips, its t, noise and
dropout are drawn for the whole batch, and each micro-batch's loss is weighted by its share of the valid frames,
so k micro-batches of B compute the update of one batch of kB (tests/training/test_teacher.py proves it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from model.config import ModelConfig, ScheduleConfig
from model.schedule import add_noise, velocity_target
from training.config import TeacherConfig, merged_model_config
from training.loader import Batch, ClipDataset, frame_mask
from training.loop import (
    FRAMES,
    Ema,
    TrainLoop,
    TrainResult,
    build_optimizer,
    create_stream,
    maybe_compile,
    prepare_run_dir,
    rand,
    randn,
    step_generator,
    step_inputs,
    sync_unless,
)
from training.precision import MixedPrecision, create_accelerator, resolve_precision

TEACHER_WEIGHTS = "teacher.pt"
TEACHER_EMA_WEIGHTS = "teacher_ema.pt"


@dataclass(frozen=True)
class ConditionDrop:
    text: Tensor  # (b,) bool: this sample sees no phonemes
    speaker: Tensor  # (b,) bool: this sample sees no reference


def drop_conditions(batch: Batch, drop: ConditionDrop) -> Batch:
    """The batch with the dropped samples' phonemes and/or reference removed (CFG training, spec §4.2)."""
    keep_text = ~drop.text[:, None]  # (b 1)
    keep_speaker = ~drop.speaker
    return replace(
        batch,
        phonemes=batch.phonemes * keep_text,  # (b p), 0 = padding
        phonemes_lengths=batch.phonemes_lengths * keep_text[:, 0],
        ref_latents=batch.ref_latents * keep_speaker[:, None, None],  # (b r c)
        ref_latents_lengths=batch.ref_latents_lengths * keep_speaker,
    )


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over valid frames only: pred, target (b n c), mask (b n)."""
    valid = mask[..., None].to(pred.dtype)  # (b n 1)
    squared = (pred.float() - target.float()) ** 2 * valid
    return squared.sum() / (valid.sum() * pred.shape[-1]).clamp_min(1.0)


def sample_logit_normal(
    batch_size: int, cfg: TeacherConfig, generator: torch.Generator, device: torch.device
) -> Tensor:
    z = randn((batch_size,), generator, device) * cfg.logit_normal_std + cfg.logit_normal_mean
    return torch.sigmoid(z)  # (b,)


@dataclass(frozen=True)
class TeacherDraws:
    """One step's random draws for a batch: t (b,), noise eps (b n c), CFG dropout."""

    t: Tensor
    eps: Tensor
    drop: ConditionDrop

    def rows(self, lo: int, hi: int, n: int, device: torch.device) -> TeacherDraws:
        """The draws of rows lo:hi, the noise cut to n frames (a micro-batch's own padding), on `device`."""
        return TeacherDraws(
            t=self.t[lo:hi].to(device),
            eps=self.eps[lo:hi, :n].to(device),
            drop=ConditionDrop(text=self.drop.text[lo:hi].to(device), speaker=self.drop.speaker[lo:hi].to(device)),
        )


def draw_teacher_noise(
    batch_size: int, num_frames: int, latent_dim: int, cfg: TeacherConfig, generator: torch.Generator
) -> TeacherDraws:
    """t, noise and dropout for a (b n c) batch, in a fixed order from `generator`, on the CPU."""
    cpu = torch.device("cpu")
    t = sample_logit_normal(batch_size, cfg, generator, cpu)  # (b,)
    eps = randn((batch_size, num_frames, latent_dim), generator, cpu)  # (b n c)
    drop = ConditionDrop(
        text=rand((batch_size,), generator, cpu) < cfg.text_drop_prob,
        speaker=rand((batch_size,), generator, cpu) < cfg.speaker_drop_prob,
    )
    return TeacherDraws(t, eps, drop)


def teacher_loss(
    model: nn.Module,
    batch: Batch,
    cfg: TeacherConfig,
    schedule: ScheduleConfig,
    generator: torch.Generator,
) -> Tensor:
    """The v-prediction loss of one batch, with this step's t, noise and CFG dropout drawn from `generator`."""
    b, n, c = batch.latents.shape
    draws = draw_teacher_noise(b, n, c, cfg, generator).rows(0, b, n, batch.latents.device)
    return teacher_loss_with(model, batch, draws, schedule)


def teacher_loss_with(model: nn.Module, batch: Batch, draws: TeacherDraws, schedule: ScheduleConfig) -> Tensor:
    """The v-prediction loss of one batch with the given draws (masked MSE over its valid frames)."""
    x0 = batch.latents  # (b n c)
    mask = frame_mask(batch.latents_lengths, x0.shape[1])  # (b n)
    t, eps = draws.t, draws.eps
    cond = drop_conditions(batch, draws.drop)
    x_t = add_noise(x0, eps, t, schedule) * mask[..., None]  # (b n c); padding stays exactly zero
    v_target = velocity_target(x0, eps, t, schedule)  # (b n c)
    phonemes_mask = frame_mask(cond.phonemes_lengths, cond.phonemes.shape[1])  # (b p)
    v_pred = model(x_t, cond.ref_latents, cond.ref_latents_lengths, mask, cond.phonemes, phonemes_mask, t)
    return masked_mse(v_pred, v_target, mask)


def build_teacher(model_cfg: ModelConfig, seed: int) -> nn.Module:
    from model.nn.dit import DiTModel

    torch.manual_seed(seed)  # identical initial weights on every rank (DDP also broadcasts them)
    return DiTModel(model_cfg)


def train_teacher(
    cfg: TeacherConfig,
    data_dir: str | Path,
    run_dir: str | Path,
    *,
    resume: str | None = None,
    init_weights: str | Path | None = None,
    cpu: bool = False,
) -> TrainResult:
    """Trains (or resumes) the teacher; writes checkpoints under run_dir/checkpoints/."""
    from model.nn.checkpoint import load_checkpoint, save_checkpoint

    prepare_run_dir(run_dir, resume)
    accelerator = create_accelerator(cpu=cpu)
    device = accelerator.device
    precision = MixedPrecision(resolve_precision(cfg.run.precision, cpu=cpu), device)
    model_cfg = merged_model_config(cfg.preset, cfg.model_overrides)
    dataset = ClipDataset.load(data_dir)
    if dataset.latent_dim != model_cfg.latent_dim:
        raise ValueError(
            f"dataset latents are {dataset.latent_dim}-dim; preset {cfg.preset!r} expects {model_cfg.latent_dim}"
        )
    stream = create_stream(dataset, cfg, accelerator)

    model = build_teacher(model_cfg, cfg.run.seed)
    if init_weights is not None:
        load_checkpoint(init_weights, model)
    model.dit.gradient_checkpointing = cfg.gradient_checkpointing
    ema = Ema(model, cfg.ema_beta, cfg.ema_warmup_power)
    optimizer, scheduler = build_optimizer(model.parameters(), cfg.optim, cfg.run.steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    ema.to(device)
    raw_model = accelerator.unwrap_model(model)
    forward = maybe_compile(model, cfg.run.compile)

    def write_weights(ckpt: Path) -> None:
        save_checkpoint(ckpt / TEACHER_WEIGHTS, raw_model, role="teacher")
        save_checkpoint(ckpt / TEACHER_EMA_WEIGHTS, ema.shadow, role="teacher_ema")

    loop = TrainLoop(
        name="teacher",
        config=cfg,
        model_config=model_cfg.to_dict(),
        run_dir=run_dir,
        accelerator=accelerator,
        stateful={
            "model": raw_model, "ema": ema, "optimizer": optimizer, "scheduler": scheduler, "loss_scale": precision
        },
        write_weights=write_weights,
        data_dir=data_dir,
    )  # fmt: skip
    if resume is not None:
        loop.resume(resume)

    def step_fn(step: int, micro_batches: list[Batch]) -> dict[str, Any]:
        # The whole update's draws, in the order a single batch draws them, then cut per micro-batch.
        b = sum(micro.size for micro in micro_batches)
        n = max(micro.latents.shape[1] for micro in micro_batches)
        draws = draw_teacher_noise(
            b, n, model_cfg.latent_dim, cfg, step_generator(cfg.run.seed, step, accelerator.process_index)
        )
        valid = [int(micro.latents_lengths.sum()) for micro in micro_batches]  # host tensors: no device sync
        total = sum(valid)
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), device=device)
        row = 0
        for i, micro in enumerate(micro_batches):
            weight = valid[i] / total
            micro_draws = draws.rows(row, row + micro.size, micro.latents.shape[1], device)
            row += micro.size
            with sync_unless(accelerator, model, i == len(micro_batches) - 1):
                with precision.autocast():
                    loss = teacher_loss_with(forward, micro.to(device), micro_draws, model_cfg.schedule)
                precision.backward(loss * weight, accelerator)
            loss_sum += loss.detach().float() * weight
        grad_norm = precision.step(optimizer, model.parameters(), cfg.optim.grad_clip_norm, accelerator)
        precision.step_scheduler(scheduler)
        ema.update(raw_model)
        scalars: dict[str, Any] = {"loss": loss_sum, "lr": scheduler.get_last_lr()[0], FRAMES: float(total)}
        if grad_norm is not None:
            scalars["grad_norm"] = grad_norm
        return scalars

    return loop.run(step_fn, step_inputs(stream, loop, accelerator))

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
of the weights (the EMA is what distillation starts from), bf16 autocast on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from model.config import ModelConfig, ScheduleConfig
from model.schedule import add_noise, velocity_target
from training.config import TeacherConfig, merged_model_config
from training.loader import Batch, BatchStream, ClipDataset, frame_mask
from training.loop import (
    Ema,
    TrainLoop,
    TrainResult,
    create_accelerator,
    prepare_run_dir,
    rand,
    randn,
    step_generator,
    warmup_cosine_lambda,
)

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


def teacher_loss(
    model: nn.Module,
    batch: Batch,
    cfg: TeacherConfig,
    schedule: ScheduleConfig,
    generator: torch.Generator,
) -> Tensor:
    """The v-prediction loss of one batch, with this step's t, noise and CFG dropout drawn from `generator`."""
    device = batch.latents.device
    b = batch.size
    x0 = batch.latents  # (b n c)
    mask = frame_mask(batch.latents_lengths, x0.shape[1])  # (b n)
    t = sample_logit_normal(b, cfg, generator, device)  # (b,)
    eps = randn(x0.shape, generator, device)  # (b n c)
    drop = ConditionDrop(
        text=rand((b,), generator, device) < cfg.text_drop_prob,
        speaker=rand((b,), generator, device) < cfg.speaker_drop_prob,
    )
    cond = drop_conditions(batch, drop)
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
    accelerator = create_accelerator(cfg.mixed_precision, cpu=cpu)
    model_cfg = merged_model_config(cfg.preset, cfg.model_overrides)
    dataset = ClipDataset.load(data_dir)
    if dataset.latent_dim != model_cfg.latent_dim:
        raise ValueError(
            f"dataset latents are {dataset.latent_dim}-dim; preset {cfg.preset!r} expects {model_cfg.latent_dim}"
        )
    stream = BatchStream(dataset, cfg.loader, rank=accelerator.process_index, world_size=accelerator.num_processes)

    model = build_teacher(model_cfg, cfg.seed)
    if init_weights is not None:
        load_checkpoint(init_weights, model)
    model.dit.gradient_checkpointing = cfg.gradient_checkpointing
    ema = Ema(model, cfg.ema_beta, cfg.ema_warmup_power)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine_lambda(cfg.steps, cfg.warmup_steps, cfg.lr, cfg.min_lr)
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    ema.to(accelerator.device)
    raw_model = accelerator.unwrap_model(model)

    def write_weights(ckpt: Path) -> None:
        save_checkpoint(ckpt / TEACHER_WEIGHTS, raw_model, role="teacher")
        save_checkpoint(ckpt / TEACHER_EMA_WEIGHTS, ema.shadow, role="teacher_ema")

    loop = TrainLoop(
        name="teacher",
        config=cfg,
        model_config=model_cfg.to_dict(),
        run_dir=run_dir,
        accelerator=accelerator,
        steps=cfg.steps,
        log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every,
        keep_checkpoints=cfg.keep_checkpoints,
        stateful={"model": raw_model, "ema": ema, "optimizer": optimizer, "scheduler": scheduler},
        write_weights=write_weights,
        data_dir=data_dir,
    )
    if resume is not None:
        loop.resume(resume)

    def step_fn(step: int) -> dict[str, float]:
        batch = stream.batch_at(step).to(accelerator.device)
        generator = step_generator(cfg.seed, step, accelerator.process_index)
        model.train()
        with accelerator.autocast():
            loss = teacher_loss(model, batch, cfg, model_cfg.schedule, generator)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip_norm)
        optimizer.step()
        scheduler.step()
        ema.update(raw_model)
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "lr": scheduler.get_last_lr()[0]}

    return loop.run(step_fn)

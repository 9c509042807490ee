"""DMD2 distillation of the teacher into the 4-step student (spec model.md §4.3).

Legend:
    b  batch
    n  latent frames
    c  latent channels
    p  phoneme tokens
    r  reference frames
    d  DiT width
    l  DiT blocks (stacked hidden states)
    w  discriminator width

    smalltts train distill --data data/tiny --teacher runs/teacher --asr runs/asr --sv runs/sv \
        --out runs/distill --preset tiny --steps 20   # CPU smoke test

Models: the student (generator) and the fake-score model start as copies of the teacher's EMA; the teacher
is the frozen real score; the discriminator reads the fake-score model's last hidden states; ASR and SV are
frozen auxiliaries. One step:

1. Backward simulation: t_prev, t_cur = TIMESTEPS[i], TIMESTEPS[i+1] with i ~ U{0..3}; the student denoises
   noise(x_real, t_prev) without gradient, the result is re-noised to t_cur and denoised again with gradient:
   x0. The student is thus trained exactly at its sampling timesteps 1, 0.75, 0.5, 0.25.
2. DMD: x_t = noise(x0, t), t ~ U(0, 1). p_real = x0 - x0_teacher(x_t) with text + speaker CFG,
   p_fake = x0 - x0_fake(x_t); grad = (p_real - p_fake) / mean|p_real| over VALID frames only (bug 21),
   pseudo-loss 0.5 ||x0 - sg(x0 - grad)||^2 / N_valid.
3. GAN (LSGAN) generator term on the fake-score model's features; its gradient reaches the student through
   those features as in DMD2 (the original's only went through x_t, bug 21), with the fake-score and
   discriminator weights held fixed for this pass (functional calls on detached weights).
4. ASR (CTC) and SV (cosine) terms on x0, each switched on after its configured step.
5. Discriminator update (real = the real latents noised to the same t), then `scorer_updates` fake-score
   updates (v-prediction on re-generated student samples). The discriminator's input widths are the DiT width
   (960 in `full`; the original's 1024 crashed, bug 3).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from model.config import ModelConfig
from model.schedule import add_noise, velocity_target, x0_from_v
from model.text.vocab import VOCAB_SIZE
from training.asr import AsrModel, ctc_loss, load_asr
from training.config import DiscriminatorConfig, DistillConfig
from training.loader import Batch, BatchStream, ClipDataset, frame_mask
from training.loop import TrainLoop, TrainResult, create_accelerator, prepare_run_dir, rand, randn, step_generator
from training.nn.conformer import Conformer
from training.sv import SvModel, cosine_loss, load_sv
from training.teacher import TEACHER_EMA_WEIGHTS, masked_mse

STUDENT_WEIGHTS = "student.pt"


class Discriminator(nn.Module):
    """Tokens [features (n), noised latents (n), [mask, t] (n), reference (r), phonemes (p)] -> one logit each."""

    def __init__(self, cfg: DiscriminatorConfig, model_cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.conformer.dim != cfg.width:
            raise ValueError(f"discriminator conformer width {cfg.conformer.dim} must equal its width {cfg.width}")
        if cfg.num_feature_layers > model_cfg.dit.depth:
            raise ValueError(f"num_feature_layers {cfg.num_feature_layers} > DiT depth {model_cfg.dit.depth}")
        transformer_dim = model_cfg.dit.dim  # the real DiT width, never a hard-coded 1024 (bug 3)
        self.num_feature_layers = cfg.num_feature_layers
        self.layers_proj = nn.Linear(cfg.num_feature_layers * transformer_dim, cfg.width)
        self.audio_proj = nn.Linear(model_cfg.latent_dim, cfg.width)
        self.cond_proj = nn.Linear(2, cfg.width)
        self.ref_proj = nn.Linear(transformer_dim, cfg.width)
        self.phoneme_embed = nn.Embedding(VOCAB_SIZE, cfg.width)
        self.encoder = Conformer(cfg.conformer)
        self.out = nn.Conv1d(cfg.width, 1, 1)

    def forward(
        self,
        features: Tensor,
        x_t: Tensor,
        ref_seq: Tensor,
        ref_mask: Tensor,
        mask: Tensor,
        phonemes: Tensor,
        t: Tensor,
    ) -> Tensor:
        """features (b l n d), x_t (b n c), ref_seq (b r d), ref_mask (b r), mask (b n), phonemes (b p), t (b,)
        -> logits (b,)."""
        n = x_t.shape[1]
        layers = features[:, -self.num_feature_layers :].permute(0, 2, 1, 3).flatten(2)  # (b n l*d)
        cond = torch.stack((mask.to(x_t.dtype), t[:, None].to(x_t.dtype).expand(-1, n)), dim=-1)  # (b n 2)
        tokens = torch.cat(
            (
                self.layers_proj(layers),
                self.audio_proj(x_t),
                self.cond_proj(cond),
                self.ref_proj(ref_seq),
                self.phoneme_embed(phonemes),
            ),
            dim=1,
        )  # (b 3n+r+p w)
        valid = torch.cat((mask, mask, mask, ref_mask, phonemes != 0), dim=1)  # (b 3n+r+p)
        h = self.encoder(tokens, valid)  # (b s w)
        scores = self.out(h.transpose(1, 2))[:, 0]  # (b s)
        weights = valid.to(scores.dtype)
        return (scores * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)  # (b,)


def frozen_call(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """module(*args) with its weights treated as constants: gradients reach the inputs, never the weights."""
    params = {name: p.detach() for name, p in module.named_parameters()}
    buffers = dict(module.named_buffers())
    return functional_call(module, {**params, **buffers}, args, kwargs)


def teacher_cfg_velocity(
    teacher: nn.Module, x_t: Tensor, batch: Batch, mask: Tensor, phonemes_mask: Tensor, t: Tensor, cfg: DistillConfig
) -> Tensor:
    """v = v_c + s_text (v_c - v_no_text) + s_spk (v_c - v_no_speaker), the three branches as one 3b batch."""
    no_text = torch.zeros_like(batch.phonemes)
    no_text_mask = torch.zeros_like(phonemes_mask)
    v = teacher(
        x_t.repeat(3, 1, 1),
        torch.cat((batch.ref_latents, batch.ref_latents, torch.zeros_like(batch.ref_latents))),
        torch.cat((batch.ref_latents_lengths, batch.ref_latents_lengths, torch.zeros_like(batch.ref_latents_lengths))),
        mask.repeat(3, 1),
        torch.cat((batch.phonemes, no_text, batch.phonemes)),
        torch.cat((phonemes_mask, no_text_mask, phonemes_mask)),
        t.repeat(3),
    )
    v_c, v_no_text, v_no_speaker = v.float().chunk(3)
    return v_c + cfg.text_cfg_scale * (v_c - v_no_text) + cfg.speaker_cfg_scale * (v_c - v_no_speaker)


def dmd_gradient(p_real: Tensor, p_fake: Tensor, mask: Tensor) -> Tensor:
    """(p_real - p_fake) / mean |p_real| per sample, the mean taken over valid frames only; padding gets 0."""
    valid = mask[..., None].to(p_real.dtype)  # (b n 1)
    count = (valid.sum(dim=(1, 2)) * p_real.shape[-1]).clamp_min(1.0)  # (b,)
    scale = (p_real.abs() * valid).sum(dim=(1, 2)) / count  # (b,)
    grad = (p_real - p_fake) / scale.clamp_min(1e-8)[:, None, None]
    return torch.nan_to_num(grad * valid)


def _resolve_weights(path: str | Path, filename: str) -> Path:
    from training.loop import resolve_checkpoint_dir

    path = Path(path)
    return path if path.is_file() else resolve_checkpoint_dir(path) / filename


def train_distill(
    cfg: DistillConfig,
    data_dir: str | Path,
    run_dir: str | Path,
    *,
    teacher: str | Path,
    asr: str | Path | None = None,
    sv: str | Path | None = None,
    resume: str | None = None,
    cpu: bool = False,
) -> TrainResult:
    """Distils the teacher (its EMA weights) into the student; asr / sv are optional auxiliary checkpoints."""
    from model.nn.checkpoint import load_checkpoint, save_checkpoint

    prepare_run_dir(run_dir, resume)
    accelerator = create_accelerator(cfg.mixed_precision, cpu=cpu)
    device = accelerator.device
    teacher_model = load_checkpoint(_resolve_weights(teacher, TEACHER_EMA_WEIGHTS))
    model_cfg: ModelConfig = teacher_model.cfg
    dataset = ClipDataset.load(data_dir)
    if dataset.latent_dim != model_cfg.latent_dim:
        raise ValueError(f"dataset latents are {dataset.latent_dim}-dim; the teacher's are {model_cfg.latent_dim}")
    stream = BatchStream(dataset, cfg.loader, rank=accelerator.process_index, world_size=accelerator.num_processes)
    asr_model: AsrModel | None = load_asr(asr).to(device).requires_grad_(False) if asr is not None else None
    sv_model: SvModel | None = load_sv(sv).to(device).requires_grad_(False) if sv is not None else None

    student = copy.deepcopy(teacher_model).train()
    scorer = copy.deepcopy(teacher_model).train()
    student.dit.gradient_checkpointing = cfg.gradient_checkpointing
    teacher_model = teacher_model.eval().requires_grad_(False).to(device)
    torch.manual_seed(cfg.seed)
    discriminator = Discriminator(cfg.discriminator, model_cfg)

    def adamw(module: nn.Module) -> torch.optim.AdamW:
        return torch.optim.AdamW(module.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)

    opt_student, opt_scorer, opt_disc = adamw(student), adamw(scorer), adamw(discriminator)
    student, scorer, discriminator, opt_student, opt_scorer, opt_disc = accelerator.prepare(
        student, scorer, discriminator, opt_student, opt_scorer, opt_disc
    )
    raw_student = accelerator.unwrap_model(student)
    raw_scorer = accelerator.unwrap_model(scorer)
    raw_disc = accelerator.unwrap_model(discriminator)

    def write_weights(ckpt: Path) -> None:
        save_checkpoint(ckpt / STUDENT_WEIGHTS, raw_student, role="student")

    loop = TrainLoop(
        name="distill",
        config=replace(cfg, preset=model_cfg.preset),
        model_config=model_cfg.to_dict(),
        run_dir=run_dir,
        accelerator=accelerator,
        steps=cfg.steps,
        log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every,
        keep_checkpoints=cfg.keep_checkpoints,
        stateful={
            "student": raw_student,
            "scorer": raw_scorer,
            "discriminator": raw_disc,
            "opt_student": opt_student,
            "opt_scorer": opt_scorer,
            "opt_discriminator": opt_disc,
        },
        write_weights=write_weights,
        data_dir=data_dir,
    )
    if resume is not None:
        loop.resume(resume)
    schedule = model_cfg.schedule
    timesteps = torch.tensor(cfg.student_timesteps, dtype=torch.float32)
    num_hops = len(cfg.student_timesteps) - 1

    def clip(module: nn.Module) -> None:
        if cfg.grad_clip_norm > 0:
            accelerator.clip_grad_norm_(module.parameters(), cfg.grad_clip_norm)

    def step_fn(step: int) -> dict[str, float]:
        batch = stream.batch_at(step).to(device)
        gen = step_generator(cfg.seed, step, accelerator.process_index)
        b = batch.size
        x_real = batch.latents  # (b n c)
        mask = frame_mask(batch.latents_lengths, x_real.shape[1])  # (b n)
        keep = mask[..., None].to(x_real.dtype)  # (b n 1)
        ph_mask = frame_mask(batch.phonemes_lengths, batch.phonemes.shape[1])  # (b p)
        cond = (batch.ref_latents, batch.ref_latents_lengths, mask, batch.phonemes, ph_mask)
        scalars: dict[str, float] = {}

        with accelerator.autocast():
            with torch.no_grad():
                ref_seq, ref_mask = teacher_model.style_encoder(batch.ref_latents, batch.ref_latents_lengths)

            # 1. backward simulation: the student's own sample at t_prev, re-noised to t_cur
            hop = torch.randint(0, num_hops, (b,), generator=gen)
            t_prev, t_cur = timesteps[hop].to(device), timesteps[hop + 1].to(device)  # (b,) each
            with torch.no_grad():
                student.eval()
                z_prev = add_noise(x_real, randn(x_real.shape, gen, device), t_prev, schedule) * keep
                x0_prev = x0_from_v(z_prev, student(z_prev, *cond, t_prev).float(), t_prev, schedule) * keep
            student.train()
            z = add_noise(x0_prev, randn(x_real.shape, gen, device), t_cur, schedule) * keep
            x0 = x0_from_v(z, student(z, *cond, t_cur).float(), t_cur, schedule) * keep  # (b n c), with gradient

            # 2. distribution matching
            t = rand((b,), gen, device)
            x_t = add_noise(x0, randn(x_real.shape, gen, device), t, schedule) * keep  # carries x0's gradient
            with torch.no_grad():
                v_real = teacher_cfg_velocity(teacher_model, x_t.detach(), batch, mask, ph_mask, t, cfg)
                p_real = (x0.detach() - x0_from_v(x_t.detach(), v_real, t, schedule)) * keep
            with torch.set_grad_enabled(cfg.gan_grad_through_features):
                fake_in = x_t if cfg.gan_grad_through_features else x_t.detach()
                v_fake, features = frozen_call(raw_scorer, fake_in, *cond, t, return_stacked_features=True)
            p_fake = (x0.detach() - x0_from_v(x_t.detach(), v_fake.detach().float(), t, schedule)) * keep
            grad = dmd_gradient(p_real, p_fake, mask)
            n_valid = (keep.sum() * x0.shape[-1]).clamp_min(1.0)
            loss_dmd = 0.5 * (((x0 - (x0 - grad).detach()) ** 2) * keep).sum() / n_valid

            # 3. GAN generator term (LSGAN)
            logits_fake = frozen_call(raw_disc, features, x_t, ref_seq, ref_mask, mask, batch.phonemes, t)
            loss_gan = ((logits_fake.float() - 1.0) ** 2).mean()
            total = loss_dmd + cfg.gan_weight * loss_gan

            # 4. auxiliary terms
            if asr_model is not None and step >= cfg.asr_start_step:
                log_probs, out_lengths = asr_model(x0, batch.latents_lengths)
                loss_asr = ctc_loss(log_probs, out_lengths, batch.phonemes, batch.phonemes_lengths)
                total = total + cfg.asr_weight * loss_asr
                scalars["student_asr"] = float(loss_asr.detach())
            if sv_model is not None and step >= cfg.sv_start_step:
                with torch.no_grad():
                    sv_target = sv_model(x_real, batch.latents_lengths)
                loss_sv = cosine_loss(sv_model(x0, batch.latents_lengths), sv_target)
                total = total + cfg.sv_weight * loss_sv
                scalars["student_sv"] = float(loss_sv.detach())

        opt_student.zero_grad(set_to_none=True)
        accelerator.backward(total)
        clip(student)
        opt_student.step()

        # 5a. discriminator: real latents noised to the same t vs the student's x_t
        with accelerator.autocast():
            with torch.no_grad():
                x_real_t = add_noise(x_real, randn(x_real.shape, gen, device), t, schedule) * keep
                _, features_real = raw_scorer(x_real_t, *cond, t, return_stacked_features=True)
            logits = discriminator(
                torch.cat((features_real, features.detach())),
                torch.cat((x_real_t, x_t.detach())),
                ref_seq.repeat(2, 1, 1),
                ref_mask.repeat(2, 1),
                mask.repeat(2, 1),
                batch.phonemes.repeat(2, 1),
                t.repeat(2),
            ).float()
            logits_real, logits_fake_d = logits.chunk(2)
            loss_disc = (logits_fake_d**2).mean() + ((logits_real - 1.0) ** 2).mean()
        opt_disc.zero_grad(set_to_none=True)
        accelerator.backward(loss_disc)
        clip(discriminator)
        opt_disc.step()

        # 5b. fake-score updates: learn the distribution of the student's current samples
        scorer_losses = []
        for k in range(cfg.scorer_updates):
            gen_k = step_generator(cfg.seed, step, accelerator.process_index, stream=1 + k)
            with accelerator.autocast():
                with torch.no_grad():
                    student.eval()
                    z_k = add_noise(x0_prev, randn(x_real.shape, gen_k, device), t_cur, schedule) * keep
                    x0_s = x0_from_v(z_k, student(z_k, *cond, t_cur).float(), t_cur, schedule) * keep
                    t_s = rand((b,), gen_k, device)
                    eps = randn(x_real.shape, gen_k, device)
                    x_ts = add_noise(x0_s, eps, t_s, schedule) * keep
                loss_scorer = masked_mse(scorer(x_ts, *cond, t_s), velocity_target(x0_s, eps, t_s, schedule), mask)
            opt_scorer.zero_grad(set_to_none=True)
            accelerator.backward(loss_scorer)
            clip(scorer)
            opt_scorer.step()
            scorer_losses.append(float(loss_scorer.detach()))
        student.train()

        grad_norms = grad.flatten(1).norm(dim=1).mean()
        scalars.update(
            {
                "student_dmd": float(loss_dmd.detach()),
                "student_gan": float(loss_gan.detach()),
                "student_loss": float(total.detach()),
                "disc_loss": float(loss_disc.detach()),
                "scorer_loss": sum(scorer_losses) / max(1, len(scorer_losses)),
                "dmd_grad_mag": float(grad_norms),
            }
        )
        return scalars

    return loop.run(step_fn)

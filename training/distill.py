"""DMD2 distillation of the teacher into the 4-step student (spec model.md §4.3; Yin et al. 2024; DMOSpeech).

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
        --out runs/distill --steps 20   # CPU smoke test; the preset is the teacher's

Models: the student (generator) and the fake-score model start as copies of the teacher's EMA; the teacher is the
frozen real score; the discriminator is a fresh head on the fake-score model's last hidden states (so the GAN
shapes the fake-score backbone too, as DMD2's classifier branch does); ASR and SV are frozen auxiliaries.
The model-agnostic maths lives in training.dmd. One step:

1. Student sample, as inference makes it (backward simulation): k ~ U{0..K-1}; the student's own chain from pure
   noise gives z_k without gradient; x0 = student(z_k, t_k) with gradient. Before `backward_sim_start_step`,
   z_k is the real clip noised to t_k instead.
2. DMD: x_t = noise(x0, t), t ~ U(dmd_t_range). p_real = x0 - x0_teacher(x_t) with text + speaker CFG,
   p_fake = x0 - x0_fake(x_t); grad = (p_real - p_fake) / mean|p_real| over VALID frames only (bug 21).
3. GAN (LSGAN) generator term on the fake-score model's features of x_t, gradient to the student through them
   (the fake-score and discriminator weights held fixed for this pass).
4. ASR (CTC) and SV (cosine) terms on x0, each switched on after its configured step.
5. Student update: warmup, gradient clipping, EMA (the EMA is what is saved and exported).
6. `scorer_updates` critic updates, each on a FRESH batch: the student's current samples (step 1's chain, no
   gradient) noised to t; fake-score v-prediction loss + critic_gan_weight x the discriminator's LSGAN loss on
   [real noised clip, student sample] features, both computed WITH gradient into the fake-score model.
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
from training.dmd import (
    dmd_gradient,
    dmd_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    sample_dmd_t,
    simulate_student_input,
)
from training.loader import Batch, ClipDataset, frame_mask
from training.loop import (
    FRAMES,
    Ema,
    TrainingError,
    TrainLoop,
    TrainResult,
    build_optimizer,
    create_stream,
    maybe_compile,
    prepare_run_dir,
    randn,
    step_generator,
    step_inputs,
)
from training.nn.conformer import Conformer
from training.precision import MixedPrecision, create_accelerator, resolve_precision
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


def resolve_weights(path: str | Path, filename: str = TEACHER_EMA_WEIGHTS) -> Path:
    """A weights file, or `filename` in a checkpoint folder or a run's latest checkpoint."""
    from training.loop import resolve_checkpoint_dir

    path = Path(path)
    return path if path.is_file() else resolve_checkpoint_dir(path) / filename


def teacher_preset(teacher: str | Path) -> str:
    """The preset of a teacher checkpoint, from its sidecar (no weights loaded)."""
    from model.config import read_sidecar

    weights = resolve_weights(teacher)
    sidecar = read_sidecar(weights) if weights.is_file() else None
    if sidecar is None:
        raise TrainingError(f"{weights}: no teacher weights with a config sidecar")
    return str(sidecar["model"]["preset"])


def student_model_config(model_cfg: ModelConfig, cfg: DistillConfig) -> ModelConfig:
    """The teacher's config, marked as a student sampled at exactly its distillation timesteps."""
    schedule = replace(
        model_cfg.schedule,
        sampler="student",
        num_steps=len(cfg.student_timesteps),
        guidance_scale=1.0,
        student_timesteps=tuple(cfg.student_timesteps),
    )
    return replace(model_cfg, schedule=schedule)


class Conditioning:
    """One batch's conditioning tensors, in the DiT's argument order, plus the masks the losses need."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        n = batch.latents.shape[1]
        self.mask = frame_mask(batch.latents_lengths, n)  # (b n)
        self.keep = self.mask[..., None].to(batch.latents.dtype)  # (b n 1)
        self.phonemes_mask = frame_mask(batch.phonemes_lengths, batch.phonemes.shape[1])  # (b p)
        self.args = (batch.ref_latents, batch.ref_latents_lengths, self.mask, batch.phonemes, self.phonemes_mask)


def student_x0(student: nn.Module, z: Tensor, t: Tensor, cond: Conditioning, model_cfg: ModelConfig) -> Tensor:
    """x0 (b n c) estimated by the student at (z, t)."""
    return x0_from_v(z, student(z, *cond.args, t).float(), t, model_cfg.schedule) * cond.keep


def student_input(
    student: nn.Module,
    cond: Conditioning,
    k: int,
    cfg: DistillConfig,
    model_cfg: ModelConfig,
    generator: torch.Generator,
    simulate: bool,
) -> tuple[Tensor, Tensor]:
    """z_k (b n c) and t_k (b,): from the student's own chain (backward simulation), or the real clip noised."""
    x_real = cond.batch.latents
    device = x_real.device
    if not simulate:
        t_k = torch.full((x_real.shape[0],), float(cfg.student_timesteps[k]), device=device)
        return add_noise(x_real, randn(x_real.shape, generator, device), t_k, model_cfg.schedule) * cond.keep, t_k
    was_training = student.training
    student.eval()
    z, t_k = simulate_student_input(
        lambda z_j, t_j: student_x0(student, z_j, t_j, cond, model_cfg),
        x_real.shape,
        cfg.student_timesteps,
        k,
        model_cfg.schedule,
        generator,
        device,
        keep=cond.keep,
    )
    student.train(was_training)
    return z, t_k


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

    teacher_model = load_checkpoint(resolve_weights(teacher))
    model_cfg: ModelConfig = teacher_model.cfg
    if cfg.preset != model_cfg.preset:
        raise TrainingError(
            f"the distillation config is for preset {cfg.preset!r} but the teacher is {model_cfg.preset!r}; "
            "distil with the teacher's preset"
        )
    if cfg.run.grad_accum_steps != 1:
        # Each step already reads 1 + scorer_updates batches; the critic's updates are not accumulated.
        raise ValueError("distillation does not accumulate gradients: grad_accum_steps must be 1")
    prepare_run_dir(run_dir, resume)
    accelerator = create_accelerator(cpu=cpu)
    device = accelerator.device
    precision = MixedPrecision(resolve_precision(cfg.run.precision, cpu=cpu), device)
    dataset = ClipDataset.load(data_dir)
    if dataset.latent_dim != model_cfg.latent_dim:
        raise ValueError(f"dataset latents are {dataset.latent_dim}-dim; the teacher's are {model_cfg.latent_dim}")
    stream = create_stream(dataset, cfg, accelerator)
    asr_model: AsrModel | None = load_asr(asr).to(device).requires_grad_(False) if asr is not None else None
    sv_model: SvModel | None = load_sv(sv).to(device).requires_grad_(False) if sv is not None else None

    student = copy.deepcopy(teacher_model).train()
    student.cfg = student_model_config(model_cfg, cfg)
    scorer = copy.deepcopy(teacher_model).train()
    student.dit.gradient_checkpointing = cfg.gradient_checkpointing
    teacher_model = teacher_model.eval().requires_grad_(False).to(device)
    torch.manual_seed(cfg.run.seed)
    discriminator = Discriminator(cfg.discriminator, model_cfg)
    ema = Ema(student, cfg.ema_beta, cfg.ema_warmup_power)

    # The student's learning rate follows cfg.optim (DMD2: linear warmup, then constant); the critic's is flat.
    opt_student, warmup = build_optimizer(student.parameters(), cfg.optim, cfg.run.steps)
    opt_scorer, _ = build_optimizer(scorer.parameters(), replace(cfg.optim, warmup_steps=0, schedule="constant"), 1)
    opt_disc, _ = build_optimizer(
        discriminator.parameters(), replace(cfg.optim, warmup_steps=0, schedule="constant"), 1
    )
    student, scorer, discriminator, opt_student, opt_scorer, opt_disc = accelerator.prepare(
        student, scorer, discriminator, opt_student, opt_scorer, opt_disc
    )
    ema.to(device)
    raw_student = accelerator.unwrap_model(student)
    raw_scorer = accelerator.unwrap_model(scorer)
    raw_disc = accelerator.unwrap_model(discriminator)
    student_fwd = maybe_compile(student, cfg.run.compile)
    scorer_fwd = maybe_compile(scorer, cfg.run.compile)

    def write_weights(ckpt: Path) -> None:
        save_checkpoint(ckpt / STUDENT_WEIGHTS, ema.shadow, role="student")

    loop = TrainLoop(
        name="distill",
        config=cfg,
        model_config=model_cfg.to_dict(),
        run_dir=run_dir,
        accelerator=accelerator,
        stateful={
            "student": raw_student,
            "student_ema": ema,
            "scorer": raw_scorer,
            "discriminator": raw_disc,
            "opt_student": opt_student,
            "opt_scorer": opt_scorer,
            "opt_discriminator": opt_disc,
            "warmup": warmup,
            "loss_scale": precision,
        },
        write_weights=write_weights,
        data_dir=data_dir,
    )
    if resume is not None:
        loop.resume(resume)
    schedule = model_cfg.schedule
    num_student_steps = len(cfg.student_timesteps)

    clip_norm = cfg.optim.grad_clip_norm

    def step_fn(step: int, batches: list[list[Batch]]) -> dict[str, Any]:
        # batches[0]: the student's; batches[u]: critic update u's, distinct global batches fixed by the step.
        cond = Conditioning(batches[0][0].to(device))
        batch = cond.batch
        gen = step_generator(cfg.run.seed, step, accelerator.process_index)
        b = batch.size
        simulate = step >= cfg.backward_sim_start_step
        use_gan = step >= cfg.gan_start_step
        scalars: dict[str, Any] = {FRAMES: float(sum(int(group[0].latents_lengths.sum()) for group in batches))}

        with precision.autocast():
            with torch.no_grad():
                ref_seq, ref_mask = teacher_model.style_encoder(batch.ref_latents, batch.ref_latents_lengths)

            # 1. the student's sample at a random one of its timesteps
            k = int(torch.randint(0, num_student_steps, (1,), generator=gen))
            z, t_k = student_input(student_fwd, cond, k, cfg, model_cfg, gen, simulate)
            x0 = student_x0(student_fwd, z, t_k, cond, model_cfg)  # (b n c), with gradient

            # 2. distribution matching
            t = sample_dmd_t(b, cfg.dmd_t_range, gen, device)
            x_t = add_noise(x0, randn(x0.shape, gen, device), t, schedule) * cond.keep  # carries x0's gradient
            with torch.no_grad():
                v_real = teacher_cfg_velocity(teacher_model, x_t.detach(), batch, cond.mask, cond.phonemes_mask, t, cfg)
                p_real = (x0.detach() - x0_from_v(x_t.detach(), v_real, t, schedule)) * cond.keep
            v_fake, features = frozen_call(raw_scorer, x_t, *cond.args, t, return_stacked_features=True)
            p_fake = (x0.detach() - x0_from_v(x_t.detach(), v_fake.detach().float(), t, schedule)) * cond.keep
            grad = dmd_gradient(p_real, p_fake, cond.mask)
            loss_dmd = dmd_loss(x0, grad, cond.keep)
            total = loss_dmd

            # 3. GAN generator term (LSGAN), through the fake-score features of x_t
            if use_gan:
                logits_fake = frozen_call(raw_disc, features, x_t, ref_seq, ref_mask, cond.mask, batch.phonemes, t)
                loss_gan = lsgan_generator_loss(logits_fake)
                total = total + cfg.gan_weight * loss_gan
                scalars["student_gan"] = loss_gan.detach()

            # 4. auxiliary terms
            if asr_model is not None and step >= cfg.asr_start_step:
                log_probs, out_lengths = asr_model(x0, batch.latents_lengths)
                loss_asr = ctc_loss(log_probs, out_lengths, batch.phonemes, batch.phonemes_lengths)
                total = total + cfg.asr_weight * loss_asr
                scalars["student_asr"] = loss_asr.detach()
            if sv_model is not None and step >= cfg.sv_start_step:
                with torch.no_grad():
                    sv_target = sv_model(batch.latents, batch.latents_lengths)
                loss_sv = cosine_loss(sv_model(x0, batch.latents_lengths), sv_target)
                total = total + cfg.sv_weight * loss_sv
                scalars["student_sv"] = loss_sv.detach()

        # 5. student update
        opt_student.zero_grad(set_to_none=True)
        precision.backward(total, accelerator)
        precision.step(opt_student, student.parameters(), clip_norm, accelerator)
        precision.step_scheduler(warmup)
        ema.update(raw_student)

        # 6. critic updates on fresh batches
        scorer_losses, disc_losses = [], []
        for update in range(1, cfg.scorer_updates + 1):
            c = Conditioning(batches[update][0].to(device))
            gen_c = step_generator(cfg.run.seed, step, accelerator.process_index, stream=update)
            with precision.autocast():
                losses = critic_losses(
                    student_fwd, scorer_fwd, discriminator, teacher_model, c, cfg, model_cfg, gen_c, simulate, use_gan
                )
            critic_total = losses[0] + (cfg.critic_gan_weight * losses[1] if losses[1] is not None else 0.0)
            opt_scorer.zero_grad(set_to_none=True)
            opt_disc.zero_grad(set_to_none=True)
            precision.backward(critic_total, accelerator)
            groups: list[tuple[torch.optim.Optimizer, Any]] = [(opt_scorer, scorer.parameters())]
            if losses[1] is not None:
                groups.append((opt_disc, discriminator.parameters()))
            precision.step_all(groups, clip_norm, accelerator)
            scorer_losses.append(losses[0].detach())
            if losses[1] is not None:
                disc_losses.append(losses[1].detach())

        scalars.update(
            {
                "student_dmd": loss_dmd.detach(),
                "student_loss": total.detach(),
                "scorer_loss": torch.stack(scorer_losses).mean(),
                "dmd_grad_mag": grad.detach().flatten(1).norm(dim=1).mean(),
                "student_step_k": float(k),
                "lr": warmup.get_last_lr()[0],
            }
        )
        if disc_losses:
            scalars["disc_loss"] = torch.stack(disc_losses).mean()
        return scalars

    return loop.run(step_fn, step_inputs(stream, loop, accelerator, per_step=1 + cfg.scorer_updates))


def critic_losses(
    student: nn.Module,
    scorer: nn.Module,
    discriminator: nn.Module,
    teacher_model: nn.Module,
    cond: Conditioning,
    cfg: DistillConfig,
    model_cfg: ModelConfig,
    generator: torch.Generator,
    simulate: bool,
    use_gan: bool,
) -> tuple[Tensor, Tensor | None]:
    """The fake-score model's v-prediction loss on the student's current samples, and (with the GAN on) the
    discriminator's LSGAN loss on fake-score features of [real noised clip, student sample], both with gradient
    into the fake-score model."""
    batch = cond.batch
    device = batch.latents.device
    schedule = model_cfg.schedule
    b = batch.size
    with torch.no_grad():
        k = int(torch.randint(0, len(cfg.student_timesteps), (1,), generator=generator))
        z, t_k = student_input(student, cond, k, cfg, model_cfg, generator, simulate)
        was_training = student.training
        student.eval()
        x0_fake = student_x0(student, z, t_k, cond, model_cfg)  # (b n c)
        student.train(was_training)
        ref_seq, ref_mask = teacher_model.style_encoder(batch.ref_latents, batch.ref_latents_lengths)
    t = sample_dmd_t(b, cfg.dmd_t_range, generator, device)
    eps = randn(x0_fake.shape, generator, device)
    x_fake_t = add_noise(x0_fake, eps, t, schedule) * cond.keep
    if not use_gan:
        v = scorer(x_fake_t, *cond.args, t)
        return masked_mse(v, velocity_target(x0_fake, eps, t, schedule), cond.mask), None
    x_real_t = add_noise(batch.latents, randn(x0_fake.shape, generator, device), t, schedule) * cond.keep
    both = tuple(torch.cat((a, a)) for a in cond.args)
    v, features = scorer(torch.cat((x_fake_t, x_real_t)), *both, t.repeat(2), return_stacked_features=True)
    loss_scorer = masked_mse(v[:b], velocity_target(x0_fake, eps, t, schedule), cond.mask)
    logits = discriminator(
        features,
        torch.cat((x_fake_t, x_real_t)),
        ref_seq.repeat(2, 1, 1),
        ref_mask.repeat(2, 1),
        cond.mask.repeat(2, 1),
        batch.phonemes.repeat(2, 1),
        t.repeat(2),
    ).float()
    logits_fake, logits_real = logits.chunk(2)
    return loss_scorer, lsgan_discriminator_loss(logits_real, logits_fake)

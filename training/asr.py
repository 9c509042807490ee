"""CTC phoneme recogniser on codec latents (spec model.md §3.10, §4.4): a distillation loss and the eval metric.

Legend:
    b  batch
    n  latent frames
    u  upsampled frames (n * upsample)
    c  latent channels
    d  conformer width
    v  vocabulary (198 phoneme ids; id 0 = padding doubles as the CTC blank)

    smalltts train asr --data data/tiny --out runs/asr --preset tiny --steps 200   # CPU smoke test

A depthwise transposed conv multiplies time by 4 (7.5 -> 30 steps/s, enough for CTC over phoneme strings),
a Conformer encodes, a linear layer gives log-probabilities. Fixes bug 19: the targets live on the model's
device and their lengths are the real phoneme counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.text.vocab import PAD_ID, VOCAB_SIZE
from training.config import AsrConfig, config_from_dict, config_to_dict
from training.loader import Batch, ClipDataset
from training.loop import TrainResult, prepare_run_dir, start_supervised_run
from training.nn.conformer import Conformer, lengths_to_mask

ASR_WEIGHTS = "asr.pt"


class AsrModel(nn.Module):
    def __init__(self, cfg: AsrConfig, latent_dim: int, vocab_size: int = VOCAB_SIZE) -> None:
        super().__init__()
        self.cfg = cfg
        self.latent_dim = latent_dim
        self.upsample = nn.ConvTranspose1d(latent_dim, latent_dim, cfg.upsample, stride=cfg.upsample, groups=latent_dim)
        width = cfg.conformer.dim
        self.in_proj: nn.Module = nn.Linear(latent_dim, width) if width != latent_dim else nn.Identity()
        self.encoder = Conformer(cfg.conformer)
        self.proj = nn.Linear(width, vocab_size)

    def forward(self, latents: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """latents (b n c), lengths (b,) -> log_probs (b u v), output lengths (b,)."""
        x = self.upsample(latents.transpose(1, 2)).transpose(1, 2)  # (b u c)
        out_lengths = lengths * self.cfg.upsample
        mask = lengths_to_mask(out_lengths, x.shape[1])  # (b u)
        x = self.encoder(self.in_proj(x), mask)  # (b u d)
        return F.log_softmax(self.proj(x).float(), dim=-1), out_lengths  # (b u v)


def ctc_loss(log_probs: Tensor, out_lengths: Tensor, phonemes: Tensor, phonemes_lengths: Tensor) -> Tensor:
    """Mean CTC loss (blank = padding id 0); log_probs (b u v), phonemes (b p) padded with 0."""
    return F.ctc_loss(
        log_probs.float().transpose(0, 1),  # (u b v)
        phonemes,
        out_lengths,
        phonemes_lengths,
        blank=PAD_ID,
        reduction="mean",
        zero_infinity=True,
    )


def greedy_decode(log_probs: Tensor, out_lengths: Tensor) -> list[list[int]]:
    """Best path: argmax per step, repeats collapsed, blanks removed."""
    best = log_probs.argmax(dim=-1).cpu()  # (b u)
    decoded = []
    for row, length in zip(best, out_lengths.cpu().tolist(), strict=True):
        ids = torch.unique_consecutive(row[: int(length)]).tolist()
        decoded.append([i for i in ids if i != PAD_ID])
    return decoded


def edit_distance(hyp: list[int], ref: list[int]) -> int:
    previous = list(range(len(ref) + 1))
    for i, h in enumerate(hyp, 1):
        current = [i] + [0] * len(ref)
        for j, r in enumerate(ref, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (h != r))
        previous = current
    return previous[-1]


def phoneme_error_rate(hyps: list[list[int]], refs: list[list[int]]) -> float:
    """Edit distance summed over utterances / reference phonemes summed (corpus-level PER)."""
    errors = sum(edit_distance(h, r) for h, r in zip(hyps, refs, strict=True))
    return errors / max(1, sum(len(r) for r in refs))


def save_asr(path: str | Path, model: AsrModel) -> Path:
    path = Path(path)
    payload = {"model": model.state_dict(), "config": config_to_dict(model.cfg), "latent_dim": model.latent_dim}
    torch.save(payload, path)
    return path


def _write_asr(ckpt: Path, model: AsrModel) -> None:
    save_asr(ckpt / ASR_WEIGHTS, model)


def load_asr(path: str | Path, map_location: str | torch.device = "cpu") -> AsrModel:
    """An ASR model from `asr.pt` (or a checkpoint/run folder holding one), in eval mode."""
    path = _weights_path(path, ASR_WEIGHTS)
    payload: dict[str, Any] = torch.load(path, map_location=map_location, weights_only=False)
    model = AsrModel(config_from_dict(AsrConfig, payload["config"]), int(payload["latent_dim"]))
    model.load_state_dict(payload["model"])
    return model.eval()


def _weights_path(path: str | Path, filename: str) -> Path:
    from training.loop import resolve_checkpoint_dir

    path = Path(path)
    return path if path.is_file() else resolve_checkpoint_dir(path) / filename


def train_asr(
    cfg: AsrConfig, data_dir: str | Path, run_dir: str | Path, *, resume: str | None = None, cpu: bool = False
) -> TrainResult:
    prepare_run_dir(run_dir, resume)
    dataset = ClipDataset.load(data_dir)
    run = start_supervised_run(
        "asr",
        cfg,
        dataset,
        lambda: AsrModel(cfg, dataset.latent_dim),
        _write_asr,
        data_dir=data_dir,
        run_dir=run_dir,
        resume=resume,
        cpu=cpu,
    )
    last: dict[str, Tensor] = {}

    def loss_fn(batch: Batch) -> Tensor:
        log_probs, out_lengths = run.model(batch.latents, batch.latents_lengths)
        last.update(log_probs=log_probs, out_lengths=out_lengths)
        return ctc_loss(log_probs, out_lengths, batch.phonemes, batch.phonemes_lengths)

    def step_fn(step: int, micro_batches: list[Batch]) -> dict[str, Any]:
        run.model.train()
        scalars = run.update(micro_batches, loss_fn, cfg.optim.grad_clip_norm)
        if (step + 1) % cfg.run.log_every == 0:  # decoding costs CPU time: only on logged steps (last micro-batch)
            batch = micro_batches[-1]
            refs = [row[: int(n)].tolist() for row, n in zip(batch.phonemes, batch.phonemes_lengths, strict=True)]
            scalars["per"] = phoneme_error_rate(greedy_decode(last["log_probs"].detach(), last["out_lengths"]), refs)
        return scalars

    return run.loop.run(step_fn, run.inputs())

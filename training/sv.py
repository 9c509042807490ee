"""Speaker-verification embedding on codec latents (spec model.md §3.10, §4.5), a distillation loss.

Legend:
    b  batch
    n  latent frames
    c  latent channels
    e  embedding size (= the pretrained encoder's: 256 for resemblyzer)

    smalltts dataset build ... --speaker-encoder resemblyzer   # stores each clip's pretrained embedding
    smalltts train sv --data data/tiny --out runs/sv --preset tiny --steps 200   # CPU smoke test

The ECAPA-like model learns to reproduce, from latents alone, the embedding a real pretrained speaker encoder
gives the clip's audio: loss = mean(1 - cos(pred, target)). The targets are computed once, from the original
audio, when the dataset is built; the original decoded latents with the codec ONNX on the CPU inside the
training loop and resampled them every step (bug 18).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.config import SvConfig, config_from_dict, config_to_dict
from training.loader import Batch, ClipDataset
from training.loop import TrainResult, prepare_run_dir, start_supervised_run
from training.nn.ecapa import Ecapa

SV_WEIGHTS = "sv.pt"


class SvModel(nn.Module):
    def __init__(self, cfg: SvConfig, latent_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.latent_dim = latent_dim
        self.ecapa = Ecapa(cfg.ecapa, latent_dim)

    def forward(self, latents: Tensor, lengths: Tensor) -> Tensor:
        """latents (b n c), lengths (b,) -> (b e), not normalised."""
        return self.ecapa(latents, lengths)


def cosine_loss(pred: Tensor, target: Tensor) -> Tensor:
    return (1.0 - F.cosine_similarity(pred.float(), target.float(), dim=-1)).mean()


def save_sv(path: str | Path, model: SvModel) -> Path:
    path = Path(path)
    torch.save({"model": model.state_dict(), "config": config_to_dict(model.cfg), "latent_dim": model.latent_dim}, path)
    return path


def load_sv(path: str | Path, map_location: str | torch.device = "cpu") -> SvModel:
    """An SV model from `sv.pt` (or a checkpoint/run folder holding one), in eval mode."""
    from training.loop import resolve_checkpoint_dir

    path = Path(path)
    path = path if path.is_file() else resolve_checkpoint_dir(path) / SV_WEIGHTS
    payload: dict[str, Any] = torch.load(path, map_location=map_location, weights_only=False)
    model = SvModel(config_from_dict(SvConfig, payload["config"]), int(payload["latent_dim"]))
    model.load_state_dict(payload["model"])
    return model.eval()


def _write_sv(ckpt: Path, model: SvModel) -> None:
    save_sv(ckpt / SV_WEIGHTS, model)


def train_sv(
    cfg: SvConfig, data_dir: str | Path, run_dir: str | Path, *, resume: str | None = None, cpu: bool = False
) -> TrainResult:
    prepare_run_dir(run_dir, resume)
    dataset = ClipDataset.load(data_dir)
    if not dataset.has_speaker_embeddings:
        from training.dataset import DatasetError  # audio packages: only when this error is raised

        raise DatasetError(
            f"{data_dir} has no speaker embeddings, which are the SV targets; rebuild it with "
            "`smalltts dataset build ... --speaker-encoder resemblyzer`"
        )
    target_dim = int(dataset.clip(0).speaker_embedding.shape[0])  # type: ignore[union-attr]
    if target_dim != cfg.ecapa.emb_dim:
        raise ValueError(
            f"the dataset's speaker embeddings are {target_dim}-dim; SvConfig.ecapa.emb_dim is {cfg.ecapa.emb_dim}"
        )
    run = start_supervised_run(
        "sv",
        cfg,
        dataset,
        lambda: SvModel(cfg, dataset.latent_dim),
        _write_sv,
        data_dir=data_dir,
        run_dir=run_dir,
        resume=resume,
        cpu=cpu,
    )

    def loss_fn(batch: Batch) -> Tensor:
        return cosine_loss(run.model(batch.latents, batch.latents_lengths), batch.speaker_embeddings)  # type: ignore[arg-type]

    def step_fn(step: int, micro_batches: list[Batch]) -> dict[str, Any]:
        run.model.train()
        return run.update(micro_batches, loss_fn, cfg.optim.grad_clip_norm)

    return run.loop.run(step_fn, run.inputs())

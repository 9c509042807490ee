"""ECAPA-TDNN speaker embedding in plain torch (Desplanques et al. 2020; speechbrain's layout, which needs
torchaudio and so does not load here).

Legend:
    b  batch
    n  frames
    c  input channels (latent_dim)
    k  block channels
    a  attention channels
    e  embedding size

TDNN blocks (conv, ReLU, BatchNorm) -> SE-Res2Net blocks with growing dilation -> multi-layer feature
aggregation -> attentive statistics pooling with global context -> BatchNorm -> linear to the embedding.
Padded frames are zeroed and excluded from every mean and the attention softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.config import EcapaConfig


def masked_mean_std(x: Tensor, weights: Tensor, eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """x (b k n), weights (b 1|k n) summing to 1 over n -> mean, std (b k)."""
    mean = (x * weights).sum(dim=-1)
    var = (weights * (x - mean[..., None]) ** 2).sum(dim=-1)
    return mean, var.clamp_min(eps).sqrt()


class TdnnBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(
            in_channels, out_channels, kernel_size, dilation=dilation, padding=dilation * (kernel_size - 1) // 2
        )
        self.norm = nn.BatchNorm1d(out_channels)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        """x (b k n), keep (b 1 n) float -> (b k' n)."""
        return self.norm(F.relu(self.conv(x * keep))) * keep


class Res2NetBlock(nn.Module):
    """Splits channels into `scale` groups; group i (i > 0) is convolved together with group i-1's output."""

    def __init__(self, channels: int, scale: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        if channels % scale:
            raise ValueError(f"ECAPA channels {channels} are not divisible by res2net_scale {scale}")
        self.scale = scale
        width = channels // scale
        self.blocks = nn.ModuleList(TdnnBlock(width, width, kernel_size, dilation) for _ in range(scale - 1))

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        chunks = x.chunk(self.scale, dim=1)
        outputs = [chunks[0]]
        previous: Tensor | None = None
        for chunk, block in zip(chunks[1:], self.blocks, strict=True):
            previous = block(chunk if previous is None else chunk + previous, keep)
            outputs.append(previous)
        return torch.cat(outputs, dim=1)


class SeBlock(nn.Module):
    """Squeeze-excitation from the masked mean over time."""

    def __init__(self, channels: int, se_channels: int) -> None:
        super().__init__()
        self.down = nn.Conv1d(channels, se_channels, 1)
        self.up = nn.Conv1d(se_channels, channels, 1)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        mean = (x * keep).sum(dim=-1, keepdim=True) / keep.sum(dim=-1, keepdim=True).clamp_min(1.0)  # (b k 1)
        return x * torch.sigmoid(self.up(F.relu(self.down(mean))))


class SeRes2NetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, cfg: EcapaConfig, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.tdnn1 = TdnnBlock(in_channels, out_channels, 1, 1)
        self.res2net = Res2NetBlock(out_channels, cfg.res2net_scale, kernel_size, dilation)
        self.tdnn2 = TdnnBlock(out_channels, out_channels, 1, 1)
        self.se = SeBlock(out_channels, cfg.se_channels)
        self.shortcut: nn.Module = (
            nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        h = self.tdnn2(self.res2net(self.tdnn1(x, keep), keep), keep)
        return self.se(h, keep) + self.shortcut(x)


class AttentiveStatsPooling(nn.Module):
    def __init__(self, channels: int, attention_channels: int, global_context: bool) -> None:
        super().__init__()
        self.global_context = global_context
        in_channels = channels * 3 if global_context else channels
        self.tdnn = TdnnBlock(in_channels, attention_channels, 1, 1)
        self.attention = nn.Conv1d(attention_channels, channels, 1)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        """x (b k n) -> (b 2k) attention-weighted mean and standard deviation."""
        n_valid = keep.sum(dim=-1, keepdim=True).clamp_min(1.0)  # (b 1 1)
        if self.global_context:
            mean, std = masked_mean_std(x, keep / n_valid)
            n = x.shape[-1]
            context = torch.cat((x, mean[..., None].expand(-1, -1, n), std[..., None].expand(-1, -1, n)), dim=1)
        else:
            context = x
        scores = self.attention(torch.tanh(self.tdnn(context, keep)))  # (b k n)
        scores = scores.masked_fill(keep == 0, torch.finfo(scores.dtype).min)
        mean, std = masked_mean_std(x, torch.softmax(scores, dim=-1))
        return torch.cat((mean, std), dim=1)  # (b 2k)


class Ecapa(nn.Module):
    def __init__(self, cfg: EcapaConfig, input_dim: int) -> None:
        super().__init__()
        lengths = {len(cfg.channels), len(cfg.kernel_sizes), len(cfg.dilations)}
        if len(lengths) != 1 or len(cfg.channels) < 3:
            raise ValueError("ECAPA channels, kernel_sizes and dilations need the same length (at least 3)")
        ch = cfg.channels
        self.first = TdnnBlock(input_dim, ch[0], cfg.kernel_sizes[0], cfg.dilations[0])
        self.blocks = nn.ModuleList(
            SeRes2NetBlock(ch[i - 1], ch[i], cfg, cfg.kernel_sizes[i], cfg.dilations[i]) for i in range(1, len(ch) - 1)
        )
        self.mfa = TdnnBlock(sum(ch[1:-1]), ch[-1], cfg.kernel_sizes[-1], cfg.dilations[-1])
        self.pooling = AttentiveStatsPooling(ch[-1], cfg.attention_channels, cfg.global_context)
        # LayerNorm, not BatchNorm: a (b 2k) BatchNorm fails on a batch of one, which length buckets can produce.
        self.pooling_norm = nn.LayerNorm(ch[-1] * 2)
        self.fc = nn.Linear(ch[-1] * 2, cfg.emb_dim)

    def forward(self, latents: Tensor, lengths: Tensor) -> Tensor:
        """latents (b n c), lengths (b,) -> embedding (b e)."""
        keep = (torch.arange(latents.shape[1], device=latents.device)[None, :] < lengths[:, None])[:, None]
        keep = keep.to(latents.dtype)  # (b 1 n)
        x = self.first(latents.transpose(1, 2), keep)  # (b k n)
        features = []
        for block in self.blocks:
            x = block(x, keep)
            features.append(x)
        x = self.mfa(torch.cat(features, dim=1), keep)  # (b k n)
        return self.fc(self.pooling_norm(self.pooling(x, keep)))  # (b e)

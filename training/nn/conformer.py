"""A Conformer stack in plain torch (torchaudio's does not load with torch 2.13), for the ASR and the discriminator.

Legend:
    b  batch
    s  sequence
    d  width
    h  heads
    e  channels per head

One layer (Gulati et al. 2020, torchaudio's ConformerLayer with the convolution after attention):
x += 0.5 FF(x); x += MHSA(x); x += Conv(x); x += 0.5 FF(x); x = LayerNorm(x). Padded positions are zeroed
before every convolution so their content never leaks into valid ones, and attention masks padded keys (a row
with no valid key gives zeros, not NaN). With `conv_norm="group"` the GroupNorm's statistics still count the
padded (zeroed) frames, so an item's output depends a little on how much padding its batch gave it; the shipped
ASR and SV checkpoints were trained that way, so a masked norm would be a retraining change, not a fix here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.nn.layers import masked_attention
from training.config import ConformerConfig


class FeedForward(nn.Module):
    def __init__(self, cfg: ConformerConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(cfg.dim),
            nn.Linear(cfg.dim, cfg.ffn_dim),
            nn.SiLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.ffn_dim, cfg.dim),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SelfAttention(nn.Module):
    def __init__(self, cfg: ConformerConfig) -> None:
        super().__init__()
        if cfg.dim % cfg.num_heads:
            raise ValueError(f"conformer width {cfg.dim} is not divisible by num_heads {cfg.num_heads}")
        self.num_heads = cfg.num_heads
        self.norm = nn.LayerNorm(cfg.dim)
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.dim)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (b s d), mask (b s) -> (b s d)."""
        q, k, v = self.qkv(self.norm(x)).unflatten(-1, (3, self.num_heads, -1)).permute(2, 0, 3, 1, 4)  # (b h s e)
        out = masked_attention(q, k, v, mask).transpose(1, 2).flatten(-2)  # (b s d)
        return self.dropout(self.out(out))


class ConvModule(nn.Module):
    """Pointwise conv + GLU, depthwise conv, norm, SiLU, pointwise conv."""

    def __init__(self, cfg: ConformerConfig) -> None:
        super().__init__()
        if cfg.kernel_size % 2 == 0:
            raise ValueError(f"conformer kernel_size must be odd, got {cfg.kernel_size}")
        self.norm = nn.LayerNorm(cfg.dim)
        self.pointwise_in = nn.Conv1d(cfg.dim, 2 * cfg.dim, 1)
        self.depthwise = nn.Conv1d(cfg.dim, cfg.dim, cfg.kernel_size, padding=cfg.kernel_size // 2, groups=cfg.dim)
        self.conv_norm: nn.Module = nn.BatchNorm1d(cfg.dim) if cfg.conv_norm == "batch" else nn.GroupNorm(1, cfg.dim)
        self.pointwise_out = nn.Conv1d(cfg.dim, cfg.dim, 1)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        keep = mask[:, None, :].to(x.dtype)  # (b 1 s)
        h = self.norm(x).transpose(1, 2) * keep  # (b d s)
        h = F.glu(self.pointwise_in(h), dim=1) * keep  # (b d s)
        h = F.silu(self.conv_norm(self.depthwise(h)))
        h = self.pointwise_out(h) * keep
        return self.dropout(h.transpose(1, 2))  # (b s d)


class ConformerLayer(nn.Module):
    def __init__(self, cfg: ConformerConfig) -> None:
        super().__init__()
        self.ffn1 = FeedForward(cfg)
        self.attention = SelfAttention(cfg)
        self.conv = ConvModule(cfg)
        self.ffn2 = FeedForward(cfg)
        self.final_norm = nn.LayerNorm(cfg.dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + 0.5 * self.ffn1(x)
        x = x + self.attention(x, mask)
        x = x + self.conv(x, mask)
        x = x + 0.5 * self.ffn2(x)
        return self.final_norm(x)


class Conformer(nn.Module):
    def __init__(self, cfg: ConformerConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ConformerLayer(cfg) for _ in range(cfg.num_layers))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (b s d), mask (b s) bool (True = valid) -> (b s d); padded rows are zeroed."""
        for layer in self.layers:
            x = layer(x, mask)
        return x * mask[..., None].to(x.dtype)


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]

"""Reference (speaker/style) encoder: reference latents -> per-frame style features (spec §3.4).

Legend:
    b  batch
    r  reference frames (after patching; patch size 1 in every preset)
    c  latent channels
    d  style encoder width (512 in `full`)
    o  output width (the DiT width)
    e  channels per head
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from model.config import StyleEncoderConfig
from model.nn.layers import EncoderBlock, RMSNorm, rotary_angles


class StyleEncoder(nn.Module):
    """in_proj scaled by exp(log_scale), gated-attention blocks, RMSNorm, out_proj; padded frames zeroed."""

    def __init__(self, cfg: StyleEncoderConfig, latent_dim: int, out_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.in_proj = nn.Linear(latent_dim * cfg.patch_size, cfg.dim)
        self.log_scale = nn.Parameter(torch.tensor(cfg.log_scale_init))
        self.blocks = nn.ModuleList(
            EncoderBlock(cfg.dim, cfg.num_heads, cfg.mlp_dim, cfg.norm_eps) for _ in range(cfg.num_layers)
        )
        self.norm = RMSNorm(cfg.dim, eps=cfg.norm_eps)
        self.out_proj = nn.Linear(cfg.dim, out_dim)

    def forward(self, ref_latents: Tensor, ref_latents_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """ref_latents (b r c), lengths (b,) int64 -> (ref_seq (b r o), ref_mask (b r) bool)."""
        patch = self.cfg.patch_size
        x = ref_latents
        if patch > 1:
            # Trailing frames that do not fill a patch are dropped, as in the original.
            num_patches = x.shape[1] // patch
            x = x[:, : num_patches * patch].reshape(x.shape[0], num_patches, x.shape[2] * patch)  # (b r c*patch)
        # arange(r) < ceil(len / patch): the original also clamps len to r first, which cannot change the result.
        num_valid = torch.div(ref_latents_lengths + (patch - 1), patch, rounding_mode="floor")  # (b,)
        ref_mask = torch.arange(x.shape[1], device=x.device)[None, :] < num_valid[:, None]  # (b r)

        x = self.in_proj(x) * self.log_scale.exp()  # (b r d)
        angles = rotary_angles(x.shape[1], self.cfg.head_dim, self.cfg.rope_theta, x.device)  # (1 r e)
        for block in self.blocks:
            x = block(x, ref_mask, angles)
        x = self.out_proj(self.norm(x))  # (b r o)
        return x.masked_fill(~ref_mask[..., None], 0.0), ref_mask

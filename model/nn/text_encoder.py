"""Phoneme encoder: token ids -> contextual phoneme features (spec §3.3).

Legend:
    b  batch
    p  phoneme tokens
    d  text encoder width (512 in `full`)
    e  channels per head
"""

from __future__ import annotations

from torch import Tensor, nn

from model.config import TextEncoderConfig
from model.nn.layers import EncoderBlock, RMSNorm, rotary_angles


class TextEncoder(nn.Module):
    """Embedding, pre-norm gated-attention blocks with full RoPE, final RMSNorm. Padded rows are not zeroed here.

    The caller (the DiT's `phoneme_proj` step) zeroes padded tokens; padded tokens never influence valid ones
    because attention masks them as keys.
    """

    def __init__(self, cfg: TextEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # No padding_idx: the published weights train row 0 like any other row.
        self.text_embedding = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.blocks = nn.ModuleList(
            EncoderBlock(cfg.dim, cfg.num_heads, cfg.mlp_dim, cfg.norm_eps) for _ in range(cfg.num_layers)
        )
        self.norm = RMSNorm(cfg.dim, eps=cfg.norm_eps)

    def forward(self, phonemes: Tensor, phonemes_mask: Tensor) -> Tensor:
        """phonemes (b p) int64, phonemes_mask (b p) bool -> (b p d)."""
        x = self.text_embedding(phonemes)  # (b p d)
        angles = rotary_angles(phonemes.shape[1], self.cfg.head_dim, self.cfg.rope_theta, x.device)  # (1 p e)
        for block in self.blocks:
            x = block(x, phonemes_mask, angles)
        return self.norm(x)

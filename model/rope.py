"""Torch-free rotary-position table for the denoiser graph's `rope` input (spec §1.11).

The DiT's RoPE table is not computed inside `denoiser.onnx`: the caller passes it as input 9, shape
(1, S, rope_dim). Angle i of position p is p / theta^(2i / rope_dim), written twice, into the adjacent
(interleaved) channels 2i and 2i+1. `model.nn.layers.rotary_angles` computes the same values in torch.
"""

from __future__ import annotations

import numpy as np


def rope_angles(num_frames: int, rope_dim: int, theta: float = 10_000.0) -> np.ndarray:
    """(1, num_frames, rope_dim) float32 interleaved rotary angles for positions 0..num_frames-1."""
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if rope_dim <= 0 or rope_dim % 2:
        raise ValueError(f"rope_dim must be a positive even number, got {rope_dim}")
    # float32 throughout, like the original's torch buffer, so both sides round identically.
    exponents = np.arange(0, rope_dim, 2, dtype=np.float32) / np.float32(rope_dim)
    inv_freq = np.float32(1.0) / np.power(np.float32(theta), exponents, dtype=np.float32)  # (rope_dim/2,)
    positions = np.arange(num_frames, dtype=np.float32)
    angles = np.outer(positions, inv_freq).astype(np.float32)  # (n, rope_dim/2)
    return np.repeat(angles, 2, axis=-1)[None]  # (1, n, rope_dim): each angle in two adjacent channels

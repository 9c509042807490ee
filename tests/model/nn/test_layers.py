from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model.nn.layers import (
    GatedSelfAttention,
    RMSNorm,
    apply_rotary,
    masked_attention,
    rotary_angles,
)
from model.rope import rope_angles


def test_rms_norm_per_head_weight() -> None:
    norm = RMSNorm((2, 4), eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(8.0).reshape(2, 4))
    x = torch.randn(3, 5, 2, 4)
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    torch.testing.assert_close(norm(x), expected)
    torch.testing.assert_close(RMSNorm(4, eps=1e-6)(x), F.rms_norm(x, (4,), eps=1e-6))


@pytest.mark.parametrize(("num_positions", "dim", "theta"), [(1, 2, 10_000.0), (37, 64, 10_000.0), (9, 16, 50.0)])
def test_torch_rotary_angles_equal_numpy_rope(num_positions: int, dim: int, theta: float) -> None:
    torch_angles = rotary_angles(num_positions, dim, theta).numpy()
    np.testing.assert_allclose(torch_angles, rope_angles(num_positions, dim, theta), rtol=1e-6, atol=0)


def test_full_rotary_equals_complex_multiplication() -> None:
    # The original encoders rotate adjacent channel pairs viewed as complex numbers.
    x = torch.randn(2, 3, 6, 8)  # (b h s e)
    angles = rotary_angles(6, 8, 10_000.0)  # (1 s e)
    freqs = torch.polar(torch.ones(6, 4), angles[0, :, 0::2])  # (s e/2) complex
    expected = torch.view_as_real(torch.view_as_complex(x.reshape(2, 3, 6, 4, 2)) * freqs).reshape(x.shape)
    torch.testing.assert_close(apply_rotary(x, angles), expected)


def test_partial_rotary_leaves_tail_channels() -> None:
    x = torch.randn(1, 2, 5, 12)
    out = apply_rotary(x, rotary_angles(5, 4, 10_000.0))
    torch.testing.assert_close(out[..., 4:], x[..., 4:])
    assert not torch.allclose(out[..., :4], x[..., :4])
    torch.testing.assert_close(out[:, :, 0], x[:, :, 0])  # position 0 has angle 0


def test_masked_attention_matches_sdpa_on_valid_rows() -> None:
    q, k, v = torch.randn(2, 2, 4, 8), torch.randn(2, 2, 6, 8), torch.randn(2, 2, 6, 8)
    key_mask = torch.tensor([[True] * 6, [True, True, False, True, False, False]])
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
    torch.testing.assert_close(masked_attention(q, k, v, key_mask), expected)


def test_masked_attention_fully_masked_row_gives_zeros_without_nan() -> None:
    q = torch.randn(2, 2, 4, 8, requires_grad=True)
    k = torch.randn(2, 2, 6, 8, requires_grad=True)
    v = torch.randn(2, 2, 6, 8, requires_grad=True)
    key_mask = torch.tensor([[True] * 6, [False] * 6])
    out = masked_attention(q, k, v, key_mask)
    assert torch.isfinite(out).all()
    assert out[1].abs().max() == 0.0
    assert out[0].abs().max() > 0.0
    out.sum().backward()
    for tensor in (q, k, v):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all()


def test_gated_self_attention_ignores_padded_keys() -> None:
    torch.manual_seed(0)
    attn = GatedSelfAttention(16, 2, 1e-6)
    x = torch.randn(1, 5, 16)
    key_mask = torch.tensor([[True, True, True, False, False]])
    angles = rotary_angles(5, 8, 10_000.0)
    changed = x.clone()
    changed[:, 3:] = torch.randn(1, 2, 16) * 10
    torch.testing.assert_close(attn(x, key_mask, angles)[:, :3], attn(changed, key_mask, angles)[:, :3])

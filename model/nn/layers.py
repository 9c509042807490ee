"""Building blocks shared by the text encoder, the style encoder and the DiT.

Legend:
    b  batch
    n  latent frames (the sequence being denoised)
    c  latent channels
    p  phoneme tokens
    r  reference frames
    s  any sequence axis (p, r or n) when a layer serves several
    d  model width
    h  heads
    e  channels per head
    k  keys (the concatenated key axis of an attention)

Attention is written by hand around `F.scaled_dot_product_attention` (not `nn.MultiheadAttention`, which
bakes shapes into the ONNX graph). Masks always mask keys; a row whose keys are all masked returns zeros
instead of the NaN that a plain softmax over -inf gives (the original's bug 20: CFG drop of the text or
speaker empties the text or style encoder's attention).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# A finite "minus infinity": exp(MASK_BIAS + score - max) underflows to exactly 0 like -inf does (in float32
# anything below about -104 does), so valid rows are unchanged, but a fully masked row becomes a finite uniform
# average (zeroed afterwards) instead of NaN. Not finfo.min: that rounds to -inf in bfloat16/float16 (autocast
# training), where -30000 is still finite.
MASK_BIAS = -30_000.0


class RMSNorm(nn.Module):
    """RMS over the last axis times a learned weight of shape `shape` ((d,) or per head (h, e))."""

    def __init__(self, shape: int | tuple[int, ...], eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(shape))

    def forward(self, x: Tensor) -> Tensor:
        # Written out (not F.rms_norm) so the legacy ONNX exporter at our opset sees plain ops.
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


class SwiGLU(nn.Module):
    """w2(silu(w1 x) * w3 x)."""

    def __init__(self, dim: int, hidden_dim: int, *, bias: bool) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.w3 = nn.Linear(dim, hidden_dim, bias=bias)
        self.w2 = nn.Linear(hidden_dim, dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


# --- rotary position embedding ----------------------------------------------------------------------


def rotary_angles(num_positions: int, dim: int, theta: float, device: torch.device | None = None) -> Tensor:
    """(1, s, dim) interleaved angles: channel 2i and 2i+1 both hold pos / theta^(2i/dim) (= model.rope)."""
    exponents = torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim
    inv_freq = 1.0 / (theta**exponents)  # (dim/2,)
    positions = torch.arange(num_positions, dtype=torch.float32, device=device)  # (s,)
    angles = positions[:, None] * inv_freq[None, :]  # (s dim/2)
    return torch.stack((angles, angles), dim=-1).flatten(-2)[None]  # (1 s dim)


def rotate_pairs(x: Tensor) -> Tensor:
    """Interleaved rotate-half: each channel pair (x0, x1) becomes (-x1, x0)."""
    pairs = x.unflatten(-1, (-1, 2))  # (... e/2 2)
    x0, x1 = pairs.unbind(dim=-1)
    return torch.stack((-x1, x0), dim=-1).flatten(-2)


def apply_rotary(x: Tensor, angles: Tensor) -> Tensor:
    """Rotates the first angles.shape[-1] channels of x (b h s e) by angles (1|b, s, rot); the rest pass.

    With rot == e this equals the original encoders' complex-number RoPE (adjacent pairs as complex numbers).
    """
    rot = angles.shape[-1]
    angles = angles[:, None]  # (1|b 1 s rot): broadcast over heads
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    x_rot = x_rot * angles.cos() + rotate_pairs(x_rot) * angles.sin()  # float32 angles promote; cast back
    return torch.cat((x_rot.to(x.dtype), x_pass), dim=-1)


# --- attention ----------------------------------------------------------------------------------------


def key_mask_bias(key_mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """(b k) bool, True = attend -> (b 1 1 k) additive bias (0 or MASK_BIAS) in the attention's dtype."""
    zero = torch.zeros((), dtype=dtype, device=key_mask.device)
    bias = torch.where(key_mask, zero, torch.full_like(zero, MASK_BIAS))
    return bias[:, None, None, :]


def masked_attention(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor) -> Tensor:
    """Non-causal SDPA of q (b h s e) over k, v (b h k e) attending only where key_mask (b k) is True.

    A batch row with no valid key gets zeros, without NaN in the forward or backward pass.
    """
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask_bias(key_mask, q.dtype))  # (b h s e)
    has_key = key_mask.any(dim=-1).to(out.dtype)[:, None, None, None]  # (b 1 1 1)
    return out * has_key


class GatedSelfAttention(nn.Module):
    """The encoders' attention: bias-free projections, per-head q/k RMSNorm, full RoPE, sigmoid output gate."""

    def __init__(self, dim: int, num_heads: int, norm_eps: float) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.wq = nn.Linear(dim, dim, bias=False)
        self.wk = nn.Linear(dim, dim, bias=False)
        self.wv = nn.Linear(dim, dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)
        self.gate = nn.Linear(dim, dim, bias=False)
        self.q_norm = RMSNorm((num_heads, head_dim), eps=norm_eps)
        self.k_norm = RMSNorm((num_heads, head_dim), eps=norm_eps)

    def forward(self, x: Tensor, key_mask: Tensor, angles: Tensor) -> Tensor:
        """x (b s d), key_mask (b s), angles (1 s e) -> (b s d)."""
        h = self.num_heads
        q = self.q_norm(self.wq(x).unflatten(-1, (h, -1))).transpose(1, 2)  # (b h s e)
        k = self.k_norm(self.wk(x).unflatten(-1, (h, -1))).transpose(1, 2)  # (b h s e)
        v = self.wv(x).unflatten(-1, (h, -1)).transpose(1, 2)  # (b h s e)
        q, k = apply_rotary(q, angles), apply_rotary(k, angles)
        out = masked_attention(q, k, v, key_mask).transpose(1, 2).flatten(-2)  # (b s d)
        return self.wo(out * torch.sigmoid(self.gate(x)))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block of the text and style encoders: x += attn(norm x); x += mlp(norm x)."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, norm_eps: float) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(dim, eps=norm_eps)
        self.attention = GatedSelfAttention(dim, num_heads, norm_eps)
        self.mlp_norm = RMSNorm(dim, eps=norm_eps)
        self.mlp = SwiGLU(dim, mlp_dim, bias=False)

    def forward(self, x: Tensor, key_mask: Tensor, angles: Tensor) -> Tensor:
        x = x + self.attention(self.attention_norm(x), key_mask, angles)
        return x + self.mlp(self.mlp_norm(x))

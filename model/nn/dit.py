"""The smalltts backbone: a DiT over codec latents with per-block cross-attention KV (spec §3).

Legend:
    b  batch
    n  latent frames (the sequence being denoised)
    c  latent channels (64)
    p  phoneme tokens
    r  reference frames
    d  DiT width (960 in `full`)
    t  text encoder width (512 in `full`), only in phoneme_proj comments
    h  heads
    e  channels per head
    l  DiT blocks (layers)
    k  keys of the joint attention: n + r + p

`DiTModel.forward` is the training path. Inference is split in two, exactly like the published ONNX pair:
`encode_conditions` (once per request: text and style encoders, then every block's cross K/V stacked to
(l b h r e) / (l b h p e)) and `denoise_step` (once per sampling step). The network predicts the velocity
v and nothing else: the schedule, losses and sampling loops live in `model.schedule`, `training/` and
`model.runtime`.

Parameter names follow the original, so its checkpoints load after `model.nn.checkpoint.clean_state_dict_keys`.
"""

from __future__ import annotations

import math
from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as grad_checkpoint

from model.config import DiTConfig, ModelConfig
from model.nn.layers import RMSNorm, SwiGLU, apply_rotary, key_mask_bias, rotary_angles
from model.nn.style_encoder import StyleEncoder
from model.nn.text_encoder import TextEncoder


class Conditions(NamedTuple):
    """What `encode_conditions` hands to every `denoise_step` of one request (the condition encoder's outputs)."""

    k_ref: Tensor  # (l b h r e), keys already normalised by k_norm_cross
    v_ref: Tensor  # (l b h r e)
    ref_mask: Tensor  # (b r) bool
    k_text: Tensor  # (l b h p e)
    v_text: Tensor  # (l b h p e)
    phonemes_mask: Tensor  # (b p) bool


class TimeEmbedding(nn.Module):
    """Sinusoidal embedding of t (sine first, arguments scaled by time_scale), then an MLP."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.freq_dim = cfg.time_freq_dim
        self.time_scale = cfg.time_scale
        self.mlp = nn.Sequential(nn.Linear(cfg.time_freq_dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))

    def forward(self, t: Tensor) -> Tensor:
        """t (b,) float -> (b d)."""
        half = self.freq_dim // 2
        freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * (-math.log(1e4) / (half - 1)))
        args = self.time_scale * t.float()[:, None] * freqs[None, :]  # (b half), float32: args reach 1000
        sinusoid = torch.cat((args.sin(), args.cos()), dim=-1)  # (b freq_dim)
        return self.mlp(sinusoid.to(self.mlp[0].weight.dtype))  # (b d)


class ConvPositionEmbedding(nn.Module):
    """Two grouped convs with Mish; padded frames are zeroed before each conv so they never leak into valid ones."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        kernel, groups = cfg.conv_pos_kernel, cfg.conv_pos_groups
        self.conv1 = nn.Conv1d(cfg.dim, cfg.dim, kernel, groups=groups, padding=kernel // 2)
        self.conv2 = nn.Conv1d(cfg.dim, cfg.dim, kernel, groups=groups, padding=kernel // 2)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (b n d), mask (b n) -> (b n d)."""
        keep = mask[:, None, :].to(x.dtype)  # (b 1 n)
        x = x.transpose(1, 2) * keep  # (b d n)
        x = F.mish(self.conv1(x)) * keep
        x = F.mish(self.conv2(x)) * keep
        return x.transpose(1, 2)  # (b n d)


class InputEmbedding(nn.Module):
    """proj(x) plus its conv position embedding."""

    def __init__(self, cfg: DiTConfig, latent_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(latent_dim, cfg.dim)
        self.conv_pos_embed = ConvPositionEmbedding(cfg)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (b n c), mask (b n) -> (b n d)."""
        x = self.proj(x)  # (b n d)
        return self.conv_pos_embed(x, mask) + x


class AdaLayerNormZero(nn.Module):
    """Block modulation: linear(silu(emb)) -> shift, scale, gate for attention and for the feed-forward."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.linear = nn.Linear(cfg.dim, cfg.dim * 6)
        self.dim, self.eps = cfg.dim, cfg.norm_eps

    def forward(self, x: Tensor, emb: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """x (b n d), emb (b d) -> normed x (b n d) and gate_msa, shift_mlp, scale_mlp, gate_mlp (b 1 d)."""
        mods = self.linear(F.silu(emb))[:, None, :]  # (b 1 6d)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mods.chunk(6, dim=-1)
        x = F.layer_norm(x, (self.dim,), eps=self.eps) * (1 + scale_msa) + shift_msa
        return x, gate_msa, shift_mlp, scale_mlp, gate_mlp


class AdaLayerNormZeroFinal(nn.Module):
    """Output modulation; note the (scale, shift) order, the reverse of the blocks'."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.linear = nn.Linear(cfg.dim, cfg.dim * 2)
        self.dim, self.eps = cfg.dim, cfg.norm_eps

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        scale, shift = self.linear(F.silu(emb))[:, None, :].chunk(2, dim=-1)  # (b 1 d) each
        return F.layer_norm(x, (self.dim,), eps=self.eps) * (1 + scale) + shift


class JointAttention(nn.Module):
    """Self-attention over the frames joined with cross keys/values of the reference and the text.

    Queries and self keys get q_norm/k_norm and partial RoPE (first rope_dim channels); cross keys get
    k_norm_cross and no rotation; values get no norm. One SDPA over k = n + r + p keys.
    """

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_heads
        inner = cfg.num_heads * cfg.head_dim
        head_shape = (cfg.num_heads, cfg.head_dim)
        self.to_q = nn.Linear(cfg.dim, inner)
        self.to_k_self = nn.Linear(cfg.dim, inner)
        self.to_v_self = nn.Linear(cfg.dim, inner)
        self.gate = nn.Linear(cfg.dim, inner, bias=False)
        # A Sequential only so the key reads `to_out.0.weight`, as in the original (its index 1 was a Dropout(0)).
        self.to_out = nn.Sequential(nn.Linear(inner, cfg.dim, bias=False))
        self.q_norm = RMSNorm(head_shape, eps=cfg.norm_eps)
        self.k_norm = RMSNorm(head_shape, eps=cfg.norm_eps)
        self.to_k_ref = nn.Linear(cfg.dim, inner)
        self.to_v_ref = nn.Linear(cfg.dim, inner)
        self.to_k_text = nn.Linear(cfg.dim, inner)
        self.to_v_text = nn.Linear(cfg.dim, inner)
        self.k_norm_cross = RMSNorm(head_shape, eps=cfg.norm_eps)

    def _cross(self, seq: Tensor, to_k: nn.Linear, to_v: nn.Linear) -> tuple[Tensor, Tensor]:
        k = self.k_norm_cross(to_k(seq).unflatten(-1, (self.num_heads, -1))).transpose(1, 2)  # (b h s e)
        v = to_v(seq).unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # (b h s e)
        return k, v

    def project_cross(self, ref_seq: Tensor, phoneme_mem: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """ref_seq (b r d), phoneme_mem (b p d) -> k_ref, v_ref (b h r e), k_text, v_text (b h p e)."""
        k_ref, v_ref = self._cross(ref_seq, self.to_k_ref, self.to_v_ref)
        k_text, v_text = self._cross(phoneme_mem, self.to_k_text, self.to_v_text)
        return k_ref, v_ref, k_text, v_text

    def forward(
        self,
        x: Tensor,
        mask: Tensor,
        joint_bias: Tensor,
        has_key: Tensor,
        rope: Tensor,
        k_ref: Tensor,
        v_ref: Tensor,
        k_text: Tensor,
        v_text: Tensor,
    ) -> Tensor:
        """x (b n d) normed, mask (b n), joint_bias (b 1|h 1|n k), has_key (b 1 1 1), rope (1 n rot) -> (b n d)."""
        h = self.num_heads
        q = self.q_norm(self.to_q(x).unflatten(-1, (h, -1))).transpose(1, 2)  # (b h n e)
        k_self = self.k_norm(self.to_k_self(x).unflatten(-1, (h, -1))).transpose(1, 2)  # (b h n e)
        v_self = self.to_v_self(x).unflatten(-1, (h, -1)).transpose(1, 2)  # (b h n e)
        q, k_self = apply_rotary(q, rope), apply_rotary(k_self, rope)
        k = torch.cat((k_self, k_ref, k_text), dim=2)  # (b h k e)
        v = torch.cat((v_self, v_ref, v_text), dim=2)  # (b h k e)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=joint_bias) * has_key  # (b h n e)
        out = out.transpose(1, 2).flatten(-2) * torch.sigmoid(self.gate(x))  # (b n h*e)
        return self.to_out(out).masked_fill(~mask[..., None], 0.0)  # (b n d)


class DiTBlock(nn.Module):
    """AdaLN-Zero block whose residual gates pass through tanh (unlike the standard adaLN-Zero)."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.attn_norm = AdaLayerNormZero(cfg)
        self.attn = JointAttention(cfg)
        self.ff_norm = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=cfg.norm_eps)
        self.ff = SwiGLU(cfg.dim, cfg.ff_dim, bias=True)

    def forward(
        self,
        x: Tensor,
        emb: Tensor,
        mask: Tensor,
        joint_bias: Tensor,
        has_key: Tensor,
        rope: Tensor,
        k_ref: Tensor,
        v_ref: Tensor,
        k_text: Tensor,
        v_text: Tensor,
    ) -> Tensor:
        """x (b n d), emb (b d) -> (b n d)."""
        h, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.attn_norm(x, emb)
        x = x + torch.tanh(gate_msa) * self.attn(h, mask, joint_bias, has_key, rope, k_ref, v_ref, k_text, v_text)
        h = self.ff_norm(x) * (1 + scale_mlp) + shift_mlp
        # The feed-forward output is not masked (only attention is): padded rows never reach valid rows anyway.
        return x + torch.tanh(gate_mlp) * self.ff(h)


def text_alignment_prior(mask: Tensor, num_ref: int, phonemes_mask: Tensor, cfg: DiTConfig) -> Tensor:
    """The diagonal text prior of `DiTConfig.text_prior_width_tokens`: (b h n k), zero on self and reference keys.

    mask (b n) and phonemes_mask (b p) give each row's frame and token counts, so the same graph serves any
    duration and text (the ONNX inputs are unchanged). Frame j sits at token position (j + .5) tokens / frames.
    """
    b, n = mask.shape
    frames = mask.sum(dim=1).clamp_min(1).to(torch.float32)  # (b,)
    tokens = phonemes_mask.sum(dim=1).clamp_min(1).to(torch.float32)  # (b,)
    frame_at = (torch.arange(n, device=mask.device, dtype=torch.float32) + 0.5)[None, :]  # (1 n)
    frame_at = frame_at * (tokens / frames)[:, None]  # (b n), in tokens
    token_at = torch.arange(phonemes_mask.shape[1], device=mask.device, dtype=torch.float32) + 0.5  # (p,)
    distance = frame_at[:, :, None] - token_at[None, None, :]  # (b n p)
    widths = cfg.text_prior_width_tokens * 2.0 ** torch.arange(cfg.num_heads, device=mask.device)  # (h,)
    text_bias = -0.5 * (distance[:, None] / widths[None, :, None, None]) ** 2  # (b h n p)
    other_keys = text_bias.new_zeros((b, cfg.num_heads, n, n + num_ref))  # (b h n n+r)
    return torch.cat((other_keys, text_bias), dim=-1)  # (b h n k)


class DiT(nn.Module):
    """Input embedding, time-embedding projection, the blocks and the final modulation (no velocity head)."""

    def __init__(self, cfg: DiTConfig, latent_dim: int, phoneme_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.gradient_checkpointing = False
        self.input_embed = InputEmbedding(cfg, latent_dim)
        self.phoneme_proj = nn.Linear(phoneme_dim, cfg.dim)
        self.emb_proj = nn.Sequential(nn.Linear(cfg.dim, cfg.dim * 2), nn.SiLU(), nn.Linear(cfg.dim * 2, cfg.dim))
        self.transformer_blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.depth))
        self.norm_out = AdaLayerNormZeroFinal(cfg)

    def blocks(self) -> list[DiTBlock]:
        return [cast(DiTBlock, block) for block in self.transformer_blocks]

    def encode_cross_kv(self, ref_seq: Tensor, phoneme_features: Tensor, phonemes_mask: Tensor) -> tuple[Tensor, ...]:
        """ref_seq (b r d), phoneme_features (b p t) -> k_ref, v_ref (l b h r e), k_text, v_text (l b h p e)."""
        phoneme_mem = self.phoneme_proj(phoneme_features).masked_fill(~phonemes_mask[..., None], 0.0)  # (b p d)
        per_block = [block.attn.project_cross(ref_seq, phoneme_mem) for block in self.blocks()]
        return tuple(torch.stack(parts, dim=0) for parts in zip(*per_block, strict=True))

    def forward(
        self, x: Tensor, mask: Tensor, time_emb: Tensor, cond: Conditions, rope: Tensor, return_stacked_features: bool
    ) -> tuple[Tensor, Tensor | None]:
        """x (b n c), time_emb (b d), rope (1 n' rot) -> hidden (b n d) and optionally stacked (b l n d)."""
        n = x.shape[1]
        rope = rope[:, -n:]  # the original takes the LAST n positions of a longer table
        x = self.input_embed(x, mask)  # (b n d)
        emb = self.emb_proj(time_emb)  # (b d)
        joint_mask = torch.cat((mask, cond.ref_mask, cond.phonemes_mask), dim=1)  # (b k)
        joint_bias = key_mask_bias(joint_mask, x.dtype)  # (b 1 1 k)
        if self.cfg.text_prior_width_tokens > 0:
            prior = text_alignment_prior(mask, cond.ref_mask.shape[1], cond.phonemes_mask, self.cfg)  # (b h n k)
            joint_bias = joint_bias + prior.to(x.dtype)  # (b h n k)
        # A batch row whose keys are all masked (an all-padding row) gives zeros instead of NaN.
        has_key = joint_mask.any(dim=-1).to(x.dtype)[:, None, None, None]  # (b 1 1 1)
        features = []
        for i, block in enumerate(self.transformer_blocks):
            cross = (cond.k_ref[i], cond.v_ref[i], cond.k_text[i], cond.v_text[i])
            args = (x, emb, mask, joint_bias, has_key, rope, *cross)
            if self.gradient_checkpointing and self.training:
                x = grad_checkpoint(block, *args, use_reentrant=False)
            else:
                x = block(*args)
            if return_stacked_features:
                features.append(x)
        stacked = torch.stack(features, dim=1) if return_stacked_features else None  # (b l n d)
        return self.norm_out(x, emb), stacked


class DiTModel(nn.Module):
    """Top level: time_embedding, phoneme_embedding (text encoder), style_encoder, dit, velocity head."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.time_embedding = TimeEmbedding(cfg.dit)
        self.phoneme_embedding = TextEncoder(cfg.text)
        self.style_encoder = StyleEncoder(cfg.style, cfg.latent_dim, cfg.dit.dim)
        self.dit = DiT(cfg.dit, cfg.latent_dim, cfg.text.dim)
        self.velocity = nn.Linear(cfg.dit.dim, cfg.latent_dim)
        # adaLN-Zero: every modulation and the velocity head start at zero, so the untrained net outputs v = 0.
        for layer in self.zero_initialised_layers():
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def zero_initialised_layers(self) -> list[nn.Linear]:
        """The layers that start at zero (for random test models, which re-initialise them)."""
        layers = [self.velocity, self.dit.norm_out.linear]
        return layers + [block.attn_norm.linear for block in self.dit.blocks()]

    def rope(self, num_frames: int, device: torch.device | None = None) -> Tensor:
        """(1 n rope_dim) angles; the same values as the torch-free `model.rope.rope_angles`."""
        return rotary_angles(num_frames, self.cfg.dit.rope_dim, self.cfg.dit.rope_theta, device)

    def encode_conditions(
        self, ref_latents: Tensor, ref_latents_lengths: Tensor, phonemes: Tensor, phonemes_mask: Tensor
    ) -> Conditions:
        """ref_latents (b r c), lengths (b,), phonemes (b p), phonemes_mask (b p) -> Conditions."""
        ref_seq, ref_mask = self.style_encoder(ref_latents, ref_latents_lengths)  # (b r d), (b r)
        phoneme_features = self.phoneme_embedding(phonemes, phonemes_mask)  # (b p t)
        k_ref, v_ref, k_text, v_text = self.dit.encode_cross_kv(ref_seq, phoneme_features, phonemes_mask)
        return Conditions(k_ref, v_ref, ref_mask, k_text, v_text, phonemes_mask)

    def denoise_step(
        self,
        x_t: Tensor,
        mask: Tensor,
        t: Tensor,
        cond: Conditions,
        rope: Tensor,
        return_stacked_features: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """x_t (b n c), mask (b n), t (b,), rope (1 n rope_dim) -> v (b n c) [, stacked features (b l n d)]."""
        hidden, stacked = self.dit(x_t, mask, self.time_embedding(t), cond, rope, return_stacked_features)
        v = self.velocity(hidden)  # (b n c)
        if stacked is not None:
            return v, stacked
        return v

    def forward(
        self,
        noised: Tensor,
        ref_latents: Tensor,
        ref_latents_lengths: Tensor,
        mask: Tensor,
        phonemes: Tensor,
        phonemes_mask: Tensor,
        t: Tensor,
        return_stacked_features: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """The training path: v (b n c), plus the hidden states after every block (b l n d) when asked."""
        cond = self.encode_conditions(ref_latents, ref_latents_lengths, phonemes, phonemes_mask)
        rope = self.rope(noised.shape[1], noised.device)
        return self.denoise_step(noised, mask, t, cond, rope, return_stacked_features)

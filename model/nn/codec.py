"""A small stand-in for the VibeVoice codec, with the published codec's ONNX interface (spec §1.6).

The published `codec/encoder.onnx` and `codec/decoder.onnx` cannot be downloaded here, so tests and
random model folders use this one instead: it frames audio into hops, maps each frame to a latent vector
and back. It is not a good codec (untrained, it only keeps a random projection of each frame); it exists so
that the whole pipeline runs and exports with the real shapes.

Legend:
    b  batch
    m  audio samples (m = n * hop after the runtime pads to a multiple of the hop)
    n  latent frames
    c  latent channels
    f  samples per frame (the hop)
    d  hidden width (cfg.hidden_dim)
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from model.config import CodecConfig

DEFAULT_HIDDEN_DIM = 64  # used when the config names no width (the vibevoice presets have hidden_dim 0)


class StandinCodecEncoder(nn.Module):
    """audio (b 1 m) float32 -> latents (b n c), n = m // hop; samples that do not fill a last hop are dropped."""

    def __init__(self, cfg: CodecConfig, hidden_dim: int) -> None:
        super().__init__()
        self.hop = cfg.hop_samples
        self.frame_proj = nn.Linear(cfg.hop_samples, hidden_dim)
        self.out_proj = nn.Linear(hidden_dim, cfg.latent_dim)

    def forward(self, audio: Tensor) -> Tensor:
        num_frames = audio.shape[-1] // self.hop
        frames = audio[:, 0, : num_frames * self.hop].reshape(audio.shape[0], num_frames, self.hop)  # (b n f)
        return self.out_proj(torch.tanh(self.frame_proj(frames)))  # (b n c)


class StandinCodecDecoder(nn.Module):
    """latents (b n c) float32 -> audio (b 1 n*hop) in (-1, 1)."""

    def __init__(self, cfg: CodecConfig, hidden_dim: int) -> None:
        super().__init__()
        self.hop = cfg.hop_samples
        self.in_proj = nn.Linear(cfg.latent_dim, hidden_dim)
        self.frame_proj = nn.Linear(hidden_dim, cfg.hop_samples)

    def forward(self, latents: Tensor) -> Tensor:
        frames = torch.tanh(self.frame_proj(torch.tanh(self.in_proj(latents))))  # (b n f)
        return frames.flatten(1)[:, None, :]  # (b 1 n*f)


class StandinCodec(nn.Module):
    """Encoder/decoder pair, deterministic from `seed` (the global torch RNG is left untouched)."""

    def __init__(self, cfg: CodecConfig, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.hidden_dim = cfg.hidden_dim if cfg.hidden_dim > 0 else DEFAULT_HIDDEN_DIM
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.encoder = StandinCodecEncoder(cfg, self.hidden_dim)
            self.decoder = StandinCodecDecoder(cfg, self.hidden_dim)

    def encode(self, audio: Tensor) -> Tensor:
        return self.encoder(audio)

    def decode(self, latents: Tensor) -> Tensor:
        return self.decoder(latents)

    def config(self) -> CodecConfig:
        """The codec config to record in sidecars: kind "standin" with the width actually built."""
        return replace(self.cfg, kind="standin", hidden_dim=self.hidden_dim)

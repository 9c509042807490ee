from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from model.config import CodecConfig, preset_config
from model.nn.codec import DEFAULT_HIDDEN_DIM, StandinCodec


@pytest.fixture
def codec() -> StandinCodec:
    return StandinCodec(preset_config("tiny").codec, seed=0).eval()


def test_encoder_shapes_drop_incomplete_hop(codec: StandinCodec) -> None:
    hop = codec.cfg.hop_samples
    with torch.no_grad():
        assert codec.encode(torch.randn(2, 1, 3 * hop)).shape == (2, 3, 64)
        assert codec.encode(torch.randn(1, 1, 3 * hop + hop - 1)).shape == (1, 3, 64)


def test_decoder_shape_and_range(codec: StandinCodec) -> None:
    with torch.no_grad():
        audio = codec.decode(torch.randn(3, 4, 64) * 5)
    assert audio.shape == (3, 1, 4 * codec.cfg.hop_samples)
    assert audio.abs().max() < 1.0


def test_hop_and_latent_dim_come_from_config() -> None:
    cfg = CodecConfig(kind="standin", hop_samples=80, latent_dim=8, hidden_dim=4)
    codec = StandinCodec(cfg)
    with torch.no_grad():
        latents = codec.encode(torch.randn(1, 1, 400))
        assert latents.shape == (1, 5, 8)
        assert codec.decode(latents).shape == (1, 1, 400)
    assert codec.encoder.frame_proj.out_features == 4


def test_seeded_and_leaves_global_rng_alone() -> None:
    cfg = preset_config("tiny").codec
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = StandinCodec(cfg, seed=1), StandinCodec(cfg, seed=1), StandinCodec(cfg, seed=2)
    assert torch.rand(1) == before
    torch.testing.assert_close(a.state_dict(), b.state_dict())
    assert not torch.equal(a.decoder.frame_proj.weight, c.decoder.frame_proj.weight)


def test_frames_are_independent(codec: StandinCodec) -> None:
    # Each latent frame depends only on its own hop of audio, and vice versa.
    hop = codec.cfg.hop_samples
    audio = torch.randn(1, 1, 3 * hop)
    changed = audio.clone()
    changed[..., 2 * hop :] = 0.5
    with torch.no_grad():
        torch.testing.assert_close(codec.encode(audio)[:, :2], codec.encode(changed)[:, :2])


def test_config_for_sidecars() -> None:
    vibevoice = preset_config("full").codec
    codec = StandinCodec(vibevoice)
    assert codec.hidden_dim == DEFAULT_HIDDEN_DIM
    assert codec.config() == replace(vibevoice, kind="standin", hidden_dim=DEFAULT_HIDDEN_DIM)

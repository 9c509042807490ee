from __future__ import annotations

import torch

from model.config import preset_config
from model.nn.text_encoder import TextEncoder


def _encoder() -> TextEncoder:
    torch.manual_seed(0)
    return TextEncoder(preset_config("tiny").text).eval()


def test_shape_and_parameter_names() -> None:
    encoder = _encoder()
    phonemes = torch.randint(1, 198, (2, 7))
    assert encoder(phonemes, torch.ones(2, 7, dtype=torch.bool)).shape == (2, 7, 32)
    names = set(dict(encoder.named_parameters()))
    assert {
        "text_embedding.weight",
        "norm.weight",
        "blocks.0.attention.q_norm.weight",
        "blocks.0.mlp.w3.weight",
    } <= names
    assert encoder.blocks[0].attention.q_norm.weight.shape == (2, 16)  # per head, per channel


def test_padded_tokens_do_not_change_valid_tokens() -> None:
    encoder = _encoder()
    phonemes = torch.randint(1, 198, (1, 9))
    mask = torch.arange(9)[None] < 6
    other = phonemes.clone()
    other[:, 6:] = torch.randint(1, 198, (1, 3))
    with torch.no_grad():
        alone = encoder(phonemes[:, :6], torch.ones(1, 6, dtype=torch.bool))
        padded = encoder(phonemes, mask)[:, :6]
        padded_other = encoder(other, mask)[:, :6]
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(padded_other, alone, atol=1e-5, rtol=1e-5)


def test_dropped_text_gives_finite_output() -> None:
    # CFG drop: every token masked (the original produced NaN here, bug 20).
    encoder = _encoder()
    out = encoder(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 5, dtype=torch.bool))
    assert torch.isfinite(out).all()


def test_positions_matter() -> None:
    encoder = _encoder()
    phonemes = torch.tensor([[5, 6, 7, 8]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        forward = encoder(phonemes, mask)
        backward = encoder(phonemes.flip(1), mask).flip(1)
    assert not torch.allclose(forward, backward, atol=1e-4)

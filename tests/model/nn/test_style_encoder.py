from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from model.config import preset_config
from model.nn.style_encoder import StyleEncoder


def _encoder(patch_size: int = 1) -> StyleEncoder:
    torch.manual_seed(0)
    cfg = replace(preset_config("tiny").style, patch_size=patch_size)
    return StyleEncoder(cfg, latent_dim=64, out_dim=48).eval()


def test_mask_rule_and_zeroed_padding() -> None:
    encoder = _encoder()
    lengths = torch.tensor([6, 2, 0, 99])
    with torch.no_grad():
        ref_seq, ref_mask = encoder(torch.randn(4, 6, 64), lengths)
    assert ref_seq.shape == (4, 6, 48)
    assert ref_mask.dtype == torch.bool
    assert ref_mask.sum(dim=1).tolist() == [6, 2, 0, 6]  # arange(R) < min(len, R)
    assert ref_seq[~ref_mask].abs().max() == 0.0
    assert torch.isfinite(ref_seq).all()  # length 0 (speaker CFG drop) has no NaN


def test_log_scale_starts_at_spec_value() -> None:
    encoder = _encoder()
    assert math.isclose(encoder.log_scale.item(), -1.8, rel_tol=1e-6)
    assert encoder.log_scale.shape == ()


def test_padded_frames_do_not_change_valid_frames() -> None:
    encoder = _encoder()
    ref = torch.randn(1, 8, 64)
    with torch.no_grad():
        alone, _ = encoder(ref[:, :5], torch.tensor([5]))
        padded, _ = encoder(torch.cat([ref[:, :5], torch.randn(1, 3, 64) * 5], dim=1), torch.tensor([5]))
    torch.testing.assert_close(padded[:, :5], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("frames", "length", "valid"), [(7, 7, 3), (7, 5, 3), (7, 3, 2), (6, 1, 1)])
def test_patching_trims_and_rounds_up(frames: int, length: int, valid: int) -> None:
    encoder = _encoder(patch_size=2)
    with torch.no_grad():
        ref_seq, ref_mask = encoder(torch.randn(1, frames, 64), torch.tensor([length]))
    assert ref_seq.shape[1] == frames // 2
    assert int(ref_mask.sum()) == valid

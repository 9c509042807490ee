from __future__ import annotations

import pytest
import torch

from training.config import ConformerConfig
from training.nn.conformer import Conformer, lengths_to_mask

CFG = ConformerConfig(dim=16, num_heads=4, ffn_dim=32, num_layers=2, kernel_size=5)


def test_lengths_to_mask_marks_the_valid_frames() -> None:
    mask = lengths_to_mask(torch.tensor([3, 1]), 4)
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False]]


@pytest.mark.parametrize("conv_norm", ["batch", "group"])
def test_padding_neither_leaks_into_valid_frames_nor_survives(conv_norm: str) -> None:
    torch.manual_seed(0)
    model = Conformer(ConformerConfig(**{**CFG.__dict__, "conv_norm": conv_norm})).eval()
    x = torch.randn(2, 6, 16)  # (b s d)
    mask = lengths_to_mask(torch.tensor([6, 4]), 6)
    with torch.no_grad():
        out = model(x, mask)
        noisy = x.clone()
        noisy[1, 4:] = 100.0  # garbage where the second item is padded
        out_noisy = model(noisy, mask)
        alone = model(x[1:, :4], lengths_to_mask(torch.tensor([4]), 4))
    assert out.shape == (2, 6, 16)
    assert torch.all(out[1, 4:] == 0)
    torch.testing.assert_close(out_noisy, out)
    if conv_norm == "batch":  # GroupNorm's statistics also span padded frames, so only their content is kept out
        torch.testing.assert_close(out[1, :4], alone[0], rtol=1e-4, atol=1e-5)


def test_a_row_with_no_valid_frame_gives_zeros_not_nan() -> None:
    model = Conformer(CFG).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 16), torch.zeros(1, 3, dtype=torch.bool))
    assert torch.all(out == 0)


def test_a_width_that_heads_cannot_split_is_refused() -> None:
    with pytest.raises(ValueError, match="multiple of num_heads"):
        ConformerConfig(dim=18, num_heads=4)

from __future__ import annotations

import pytest
import torch

from training.config import EcapaConfig
from training.nn.ecapa import Ecapa

CFG = EcapaConfig(
    channels=(16, 16, 16, 48),
    kernel_sizes=(3, 3, 3, 1),
    dilations=(1, 2, 3, 1),
    attention_channels=8,
    res2net_scale=4,
    se_channels=8,
    emb_dim=12,
)


@pytest.mark.parametrize("global_context", [True, False])
def test_one_embedding_per_item_that_ignores_padding(global_context: bool) -> None:
    torch.manual_seed(0)
    model = Ecapa(EcapaConfig(**{**CFG.__dict__, "global_context": global_context}), input_dim=64).eval()
    latents = torch.randn(2, 10, 64)  # (b n c)
    lengths = torch.tensor([10, 6])
    with torch.no_grad():
        emb = model(latents, lengths)
        noisy = latents.clone()
        noisy[1, 6:] = 50.0  # garbage where the second item is padded
        emb_noisy = model(noisy, lengths)
        alone = model(latents[1:, :6], torch.tensor([6]))
    assert emb.shape == (2, 12)  # (b e)
    assert torch.isfinite(emb).all()
    torch.testing.assert_close(emb_noisy, emb)
    torch.testing.assert_close(emb[1], alone[0], rtol=1e-4, atol=1e-5)


def test_a_batch_of_one_trains() -> None:
    model = Ecapa(CFG, input_dim=64).train()  # length buckets can produce a batch of one
    model(torch.randn(1, 5, 64), torch.tensor([5])).sum().backward()


def test_mismatched_block_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        Ecapa(EcapaConfig(channels=(16, 16, 48), kernel_sizes=(3, 1), dilations=(1, 1)), input_dim=64)

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.runtime.cache import content_key
from model.runtime.condition import ConditionStage, pad_reference_kv
from model.runtime.graph import OnnxGraph
from model.runtime.request import PreparedRequest


def _item(frames: int, tokens: int, seed: int) -> PreparedRequest:
    latents = np.random.default_rng(seed).standard_normal((frames, 64)).astype(np.float32)
    return PreparedRequest(
        token_ids=np.arange(1, tokens + 1, dtype=np.int64),
        ref_latents=latents,
        ref_key=content_key(latents),
        num_frames=5,
        seed=seed,
        timesteps=(1.0,),
    )


def test_pad_reference_kv_stacks_items_and_masks_the_padding() -> None:
    short = (np.ones((2, 1, 3, 4, 5), np.float32), np.ones((2, 1, 3, 4, 5), np.float32), np.ones((1, 4), bool))
    long = (np.full((2, 1, 3, 6, 5), 2, np.float32), np.full((2, 1, 3, 6, 5), 2, np.float32), np.ones((1, 6), bool))
    k, v, mask = pad_reference_kv([short, long])
    assert k.shape == v.shape == (2, 2, 3, 6, 5) and mask.shape == (2, 6)
    assert mask[0].tolist() == [True] * 4 + [False] * 2 and mask[1].all()
    assert float(k[:, 0, :, 4:].max()) == 0.0 and float(k[:, 1].min()) == 2.0


def test_a_cached_voice_runs_with_a_one_frame_dummy_and_gives_the_same_conditioning(tiny_model_dir: Path) -> None:
    encoder = OnnxGraph(tiny_model_dir / "dmd" / "condition_encoder.onnx")
    stage = ConditionStage(encoder, latent_dim=64, cache_bytes=64 << 20)
    items = [_item(9, 7, 0), _item(4, 3, 1)]
    first = stage.condition(items)
    assert len(stage.cache) == 2
    seen: list[int] = []
    run = encoder.run

    def spy(*arrays: np.ndarray) -> list[np.ndarray]:
        seen.append(arrays[0].shape[1])  # reference frames the encoder got
        return run(*arrays)

    encoder.run = spy  # type: ignore[method-assign]
    again = stage.condition(items)
    assert seen == [1]
    for name in ("k_ref", "v_ref", "ref_mask", "k_text", "v_text", "phonemes_mask"):
        np.testing.assert_allclose(getattr(first, name), getattr(again, name), atol=1e-5)

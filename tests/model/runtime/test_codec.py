"""One decoder call per batch where padding provably changes nothing; per length where it would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.config import read_sidecar
from model.runtime.assets import demo_dir
from model.runtime.codec import CodecDecoder
from model.runtime.graph import OnnxGraph


def _decoder(model_dir: Path) -> tuple[CodecDecoder, int]:
    path = model_dir / "codec" / "decoder.onnx"
    codec = (read_sidecar(path) or {})["model"]["codec"]
    return CodecDecoder(OnnxGraph(path), codec["hop_samples"]), codec["latent_dim"]


def _check_items(decoder: CodecDecoder, latent_dim: int) -> list[int]:
    """Decodes a mixed-length batch; returns the batch size of every decoder call it made."""
    frames = [7, 3, 7, 5]
    latents = np.random.default_rng(1).standard_normal((4, 7, latent_dim)).astype(np.float32)
    for i, count in enumerate(frames):
        latents[i, count:] = 0.0  # as the sampler leaves padded frames
    calls: list[int] = []
    run = decoder.graph.run

    def counted(*arrays: np.ndarray) -> list[np.ndarray]:
        calls.append(arrays[0].shape[0])
        return run(*arrays)

    decoder.pads_safely(latent_dim)  # the probe's own calls are not counted
    decoder.graph.run = counted  # type: ignore[method-assign]
    audio = decoder.decode_items(latents, frames)
    decoder.graph.run = run  # type: ignore[method-assign]
    for i, count in enumerate(frames):
        own = decoder.decode(latents[i : i + 1, :count])[0]
        assert audio[i].shape == (count * decoder.hop_samples,)
        assert float(np.abs(audio[i] - own).max()) <= 1e-5
    return calls


def test_a_causal_decoder_decodes_a_batch_in_one_call(tiny_model_dir: Path) -> None:
    decoder, latent_dim = _decoder(tiny_model_dir)  # the stand-in codec: causal
    assert decoder.pads_safely(latent_dim)
    assert _check_items(decoder, latent_dim) == [4]


def test_a_decoder_that_looks_ahead_decodes_per_length() -> None:
    if not (demo_dir() / "codec" / "decoder.onnx").is_file():
        pytest.skip("the bundled demo model is not here")
    decoder, latent_dim = _decoder(demo_dir())  # the demo's mel vocoder sees the frames after each one
    assert not decoder.pads_safely(latent_dim)
    assert sorted(_check_items(decoder, latent_dim)) == [1, 1, 2]

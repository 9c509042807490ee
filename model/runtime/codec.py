"""The audio codec's two graphs: 24 kHz mono audio <-> latents (spec §1.6).

    encoder.onnx   audio (b 1 N) float32           -> latents (b T c)
    decoder.onnx   latents (b T c) float32         -> audio (b 1 T*hop)

b = batch, N = samples, T = latent frames, c = latent channels (64), hop = samples per frame (3200).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model.runtime.graph import OnnxGraph


class CodecEncoder:
    def __init__(self, graph: OnnxGraph, hop_samples: int) -> None:
        self.graph = graph
        self.hop_samples = hop_samples

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """(n,) float32 audio at the codec rate -> (T, c) float32 latents."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        # The published encoder's rounding rule is unknown (spec §1.6); padding to whole frames makes
        # T = ceil(n / hop) for any encoder that maps one hop to one frame.
        padded_len = -(-audio.shape[0] // self.hop_samples) * self.hop_samples
        padded = np.zeros((1, 1, padded_len), dtype=np.float32)  # (b 1 N)
        padded[0, 0, : audio.shape[0]] = audio
        latents = self.graph.run(padded)[0]  # (1 T c)
        return np.ascontiguousarray(latents[0], dtype=np.float32)  # (T c)


class CodecDecoder:
    def __init__(self, graph: OnnxGraph, hop_samples: int) -> None:
        self.graph = graph
        self.hop_samples = hop_samples
        self._pads_safely: bool | None = None  # probed on the first batch of mixed lengths

    @property
    def accepts_batch(self) -> bool:
        return self.graph.accepts_batch

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """(b T c) latents -> (b, T*hop) float32 audio, exactly T*hop samples per item."""
        latents = np.asarray(latents, dtype=np.float32)
        num_frames = latents.shape[1]
        if self.accepts_batch or latents.shape[0] == 1:
            audio = self.graph.run(latents)[0].reshape(latents.shape[0], -1)  # (b N)
        else:
            audio = np.concatenate([self.graph.run(item[None])[0].reshape(1, -1) for item in latents])
        expected = num_frames * self.hop_samples
        if audio.shape[1] != expected:
            # The contract is T*hop samples (every published sample is an exact multiple of 3200); a graph that
            # pads or trims differently is brought back to it so callers can rely on the length.
            fixed = np.zeros((audio.shape[0], expected), dtype=np.float32)
            keep = min(expected, audio.shape[1])
            fixed[:, :keep] = audio[:, :keep]
            audio = fixed
        return np.ascontiguousarray(audio, dtype=np.float32)

    def pads_safely(self, latent_dim: int) -> bool:
        """Whether decoding zero-padded latents and trimming gives exactly an item's own decoding (true for a
        causal decoder, false for one that looks ahead): probed once on seeded latents, within 1e-5."""
        if self._pads_safely is None:
            if not self.accepts_batch:
                self._pads_safely = False
            else:
                latents = np.random.default_rng(0).standard_normal((2, 6, latent_dim)).astype(np.float32)
                latents[1, 3:] = 0.0
                padded = self.decode(latents)[1, : 3 * self.hop_samples]
                own = self.decode(latents[1:, :3])[0]
                self._pads_safely = bool(np.abs(padded - own).max() <= 1e-5 * max(1.0, float(np.abs(own).max())))
        return self._pads_safely

    def decode_items(self, latents: np.ndarray, frames: Sequence[int]) -> list[np.ndarray]:
        """(b n c) latents, zero past each item's frames -> item i's audio (frames[i] * hop,), as if decoded alone.

        One decoder call for the batch when padding provably changes nothing (`pads_safely`); otherwise one call
        per length, each item decoded from its own frames only (a decoder that looks ahead would hear padding).
        """
        if len(set(frames)) > 1 and self.pads_safely(latents.shape[2]):
            decoded = self.decode(latents[:, : max(frames)])  # (b, max * hop)
            return [decoded[i, : count * self.hop_samples].copy() for i, count in enumerate(frames)]
        audio: list[np.ndarray | None] = [None] * len(frames)
        by_length: dict[int, list[int]] = {}
        for i, count in enumerate(frames):
            by_length.setdefault(count, []).append(i)
        for count, indices in by_length.items():
            decoded = self.decode(latents[indices, :count])  # (k, count * hop)
            for row, i in zip(decoded, indices, strict=True):
                audio[i] = row
        return [row for row in audio if row is not None]

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

    def decode_items(self, latents: np.ndarray, frames: Sequence[int]) -> list[np.ndarray]:
        """(b n c) padded latents -> item i's audio (frames[i] * hop,), decoded from its own frames only.

        A convolutional decoder would otherwise hear the padding; items of equal length share one call.
        """
        audio: list[np.ndarray | None] = [None] * len(frames)
        by_length: dict[int, list[int]] = {}
        for i, count in enumerate(frames):
            by_length.setdefault(count, []).append(i)
        for count, indices in by_length.items():
            decoded = self.decode(latents[indices, :count])  # (k, count * hop)
            for row, i in zip(decoded, indices, strict=True):
                audio[i] = row
        return [row for row in audio if row is not None]

"""FakeSynthesizer for the batching unit tests: records every batch, returns silence of the right length."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np

from model.errors import InputError
from model.runtime.synthesizer import SynthesisRequest, SynthesisResult

FRAME_RATE_HZ = 7.5
HOP_SAMPLES = 4  # tiny audio: the fake only has to get the lengths right


def request(duration_s: float = 1.0, *, seed: int = 0, steps: int = 4) -> SynthesisRequest:
    return SynthesisRequest(
        token_ids=(1, 2, 3),
        ref_latents=np.zeros((2, 64), np.float32),
        duration_s=duration_s,
        seed=seed,
        num_steps=steps,
    )


class FakeSynthesizer:
    """`batches` holds the seeds of each call; `gate` (when set up) blocks calls until released."""

    def __init__(self, *, fail_seed: int | None = None, crash: bool = False, blocking: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail_seed = fail_seed
        self.crash = crash
        self.gate = threading.Event()
        if not blocking:
            self.gate.set()
        self.entered = threading.Event()

    @property
    def batch_sizes(self) -> list[int]:
        return [len(batch) for batch in self.batches]

    def synthesize_batch(self, requests: Sequence[SynthesisRequest]) -> list[SynthesisResult]:
        self.batches.append([r.seed for r in requests])
        self.entered.set()
        if not self.gate.wait(timeout=30):
            raise RuntimeError("FakeSynthesizer: gate never opened")
        if self.crash:
            raise RuntimeError("boom")
        if self.fail_seed is not None and any(r.seed == self.fail_seed for r in requests):
            raise InputError("bad request in batch", field="text", code="text_invalid")
        results = []
        for r in requests:
            frames = max(1, math.ceil(r.duration_s * FRAME_RATE_HZ))
            results.append(
                SynthesisResult(
                    audio=np.full(frames * HOP_SAMPLES, r.seed, np.float32),
                    num_frames=frames,
                    seed=r.seed,
                    sample_rate_hz=30,
                )
            )
        return results

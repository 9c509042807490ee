"""Helpers for the service tests: test recordings, multipart forms and a gated (blocking) synthesizer.

`live_server` (the app under a real uvicorn on loopback) is the one `smalltts bench-pay` uses."""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import soundfile as sf

from model.runtime.synthesizer import SynthesisRequest, SynthesisResult, Synthesizer
from service.payment.devchain.anvil import free_port
from smalltts.cli.bench_pay import running_server as live_server

__all__ = ["GatedSynthesizer", "form", "free_port", "live_server", "tone_wav"]


def tone_wav(
    seconds: float = 1.0,
    *,
    rate_hz: int = 16_000,
    channels: int = 1,
    amplitude: float = 0.3,
    subtype: str = "PCM_16",
    container: str = "WAV",
) -> bytes:
    """A voiced-sounding test recording: a 150 Hz harmonic tone with a slow tremolo."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    wave = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6)) * (1 + 0.4 * np.sin(2 * np.pi * 4 * t))
    wave = (amplitude * wave / np.abs(wave).max()).astype(np.float32)
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    buffer = io.BytesIO()
    sf.write(buffer, data, rate_hz, format=container, subtype=subtype)
    return buffer.getvalue()


class GatedSynthesizer:
    """The real synthesizer behind a gate: `synthesize_batch` records its batch size, then blocks until `open()`.

    Lets a test hold the single worker busy to fill the queue (503) or run out the clock (504).
    """

    def __init__(self, inner: Synthesizer) -> None:
        self.inner = inner
        self.calls: list[int] = []
        self._gate = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def open(self) -> None:
        self._gate.set()

    def synthesize_batch(self, requests: Sequence[SynthesisRequest]) -> list[SynthesisResult]:
        self.calls.append(len(requests))
        if not self._gate.wait(timeout=60):
            raise RuntimeError("GatedSynthesizer: the test never opened the gate")
        return self.inner.synthesize_batch(requests)


def form(text: str | None = "Hello world.", audio: bytes | None = None, **fields: str) -> dict[str, Any]:
    """httpx keyword arguments for a multipart form (always multipart, even without a file)."""
    parts: list[tuple[str, tuple[str | None, bytes | str, str | None]]] = []
    if text is not None:
        parts.append(("text", (None, text, None)))
    for name, value in fields.items():
        parts.append((name, (None, value, None)))
    if audio is not None:
        parts.append(("audio", ("reference.wav", audio, "audio/wav")))
    return {"files": parts}

"""Helpers for the service tests: test recordings, multipart forms and a gated (blocking) synthesizer."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import soundfile as sf
import uvicorn
from fastapi import FastAPI

from model.runtime.synthesizer import SynthesisRequest, SynthesisResult, Synthesizer


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Runs `app` under a real uvicorn on a loopback port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)

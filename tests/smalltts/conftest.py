"""Fixtures for the API and its commands: a reference voice file, and the tiny model loaded once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from smalltts import SmallTTS


@pytest.fixture(scope="session")
def voice_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s stereo 44.1 kHz WAV: decoding, mixing and resampling all run on the way in."""
    path = tmp_path_factory.mktemp("voice") / "voice.wav"
    t = np.arange(2 * 44_100) / 44_100
    tone = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
    sf.write(path, np.stack([tone, 0.5 * tone], axis=1), 44_100)
    return path


@pytest.fixture(scope="session")
def tiny_tts(tiny_model_dir: Path) -> SmallTTS:
    return SmallTTS(tiny_model_dir, device="cpu")

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from service import builtin_voice
from service.builtin_voice import create_builtin_voice
from service.voices import BUILTIN_VOICE_ID, VoiceStore


def _store(root: Path) -> VoiceStore:
    voices = VoiceStore(
        root, model_id="m", sample_rate_hz=24_000, encode_reference=lambda audio: np.zeros((4, 64), np.float32)
    )
    voices.load()
    return voices


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_the_default_voice_is_spoken_by_espeak_ng(tmp_path: Path) -> None:
    voices = _store(tmp_path)
    assert create_builtin_voice(voices)
    voice = voices.get(BUILTIN_VOICE_ID)
    assert voice.sample_rate_hz == 24_000 and 1.0 < voice.reference_s < 10.0


def test_without_espeak_ng_there_is_no_default_voice_and_the_service_runs_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(builtin_voice.shutil, "which", lambda name: None)
    voices = _store(tmp_path)
    with caplog.at_level(logging.WARNING, logger="smalltts.service"):
        assert not create_builtin_voice(voices)
    assert BUILTIN_VOICE_ID not in voices
    assert "espeak-ng not found" in caplog.text


def test_a_failing_espeak_ng_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(builtin_voice.shutil, "which", lambda name: "/bin/false")
    voices = _store(tmp_path)
    with caplog.at_level(logging.WARNING, logger="smalltts.service"):
        assert not create_builtin_voice(voices)
    assert BUILTIN_VOICE_ID not in voices and "espeak-ng failed" in caplog.text

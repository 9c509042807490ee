"""VoiceStore on its own, with a fake encoder (the routes over it are tested in tests/service/api/test_voices.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.errors import UnknownVoiceError, VoiceLimitError
from service.voices import VoiceStore

RATE_HZ = 8_000


class FakeEncoder:
    """(n,) audio -> (r c) latents whose values say which model made them; counts its calls."""

    def __init__(self, mark: float) -> None:
        self.mark = mark
        self.calls = 0

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.full((max(1, audio.shape[0] // 1000), 4), self.mark, np.float32)


def store(root: Path, model_id: str = "m1", mark: float = 1.0, **kwargs: int) -> VoiceStore:
    voices = VoiceStore(root, model_id=model_id, sample_rate_hz=RATE_HZ, encode_reference=FakeEncoder(mark), **kwargs)
    voices.load()
    return voices


def tone(seconds: float = 1.0) -> np.ndarray:
    return (0.3 * np.sin(np.arange(int(seconds * RATE_HZ)) / 10)).astype(np.float32)


def test_a_voice_is_stored_listed_and_survives_a_restart(tmp_path: Path) -> None:
    first = store(tmp_path)
    voice, latents = first.create(tone(2.0), name="mine")
    assert voice.id.startswith("v_") and voice.reference_s == 2.0 and voice in first.list()
    again = store(tmp_path)
    assert again.get(voice.id) == voice
    np.testing.assert_array_equal(again.latents(voice.id), latents)
    assert again._encode_reference.calls == 0  # type: ignore[attr-defined]  # read from disk, not re-encoded
    assert again.reference_wav(voice.id).startswith(b"RIFF")


def test_another_model_re_encodes_the_stored_reference_once(tmp_path: Path) -> None:
    voice, _ = store(tmp_path).create(tone(), name="mine")
    other = store(tmp_path, model_id="m2", mark=2.0)
    assert np.all(other.latents(voice.id) == 2.0)
    other.latents(voice.id)
    assert other._encode_reference.calls == 1  # type: ignore[attr-defined]
    assert np.all(store(tmp_path).latents(voice.id) == 1.0)  # the first model's latents are kept


def test_delete_and_unknown_ids(tmp_path: Path) -> None:
    voices = store(tmp_path)
    voice, _ = voices.create(tone(), name="mine", voice_id="alice")
    assert voices.delete("alice") == voice
    assert "alice" not in voices and not (tmp_path / "alice").exists()
    for read in (voices.get, voices.latents, voices.reference_wav, voices.delete):
        with pytest.raises(UnknownVoiceError):
            read("alice")


def test_the_store_is_bounded_but_a_voice_may_be_replaced(tmp_path: Path) -> None:
    voices = store(tmp_path, max_voices=1)
    voices.create(tone(), name="a", voice_id="a")
    voices.create(tone(0.5), name="a again", voice_id="a")  # same id: a replacement, not a new voice
    assert voices.get("a").name == "a again"
    with pytest.raises(VoiceLimitError):
        voices.create(tone(), name="b", voice_id="b")


@pytest.mark.parametrize("voice_id", ["../escape", "-dash", "", "a" * 65, "with space"])
def test_ids_that_are_not_safe_folder_names_are_refused(tmp_path: Path, voice_id: str) -> None:
    with pytest.raises(ValueError, match="invalid voice id"):
        store(tmp_path).create(tone(), name="x", voice_id=voice_id)


def test_load_skips_half_written_and_unreadable_folders(tmp_path: Path) -> None:
    store(tmp_path).create(tone(), name="ok", voice_id="ok")
    (tmp_path / ".tmp-ok-1234").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "meta.json").write_text("{not json")
    voices = VoiceStore(tmp_path, model_id="m1", sample_rate_hz=RATE_HZ, encode_reference=FakeEncoder(1.0))
    assert voices.load() == 1 and [v.id for v in voices.list()] == ["ok"]

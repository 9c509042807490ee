from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.training.fixtures import resemblyzer_usable
from training.speaker_encoder import SpeakerEncoderError, cosine_similarity, load_speaker_encoder


def test_resemblyzer_embeds_real_speech_offline(corpus_dir: Path) -> None:
    usable, reason = resemblyzer_usable()
    if not usable:
        pytest.skip(f"resemblyzer unusable here: {reason}")
    import soundfile as sf

    from training.speaker_encoder import ResemblyzerEncoder, cosine_similarity

    encoder = ResemblyzerEncoder()
    wavs = sorted((corpus_dir / "wavs").rglob("*.wav"))
    by_speaker: dict[str, list[np.ndarray]] = {}
    for path in wavs:
        audio, rate = sf.read(path, dtype="float32")
        by_speaker.setdefault(path.parent.name, []).append(encoder.embed(audio, rate))
    (a1, a2, *_), (b1, *_) = list(by_speaker.values())[:2]
    assert a1.shape == (256,)
    assert cosine_similarity(a1, a2) > cosine_similarity(a1, b1)


def test_embed_batch_matches_one_clip_at_a_time() -> None:
    usable, reason = resemblyzer_usable()
    if not usable:
        pytest.skip(f"resemblyzer unusable here: {reason}")
    encoder = load_speaker_encoder("resemblyzer")
    t = np.arange(24_000 * 2) / 24_000
    clips = [
        (0.3 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 4 * t))).astype(np.float32),
        (0.2 * np.sin(2 * np.pi * 260 * t[:30_000])).astype(np.float32),
    ]
    batch = encoder.embed_batch(clips, 24_000)
    assert batch.shape == (2, 256)
    for row, clip in zip(batch, clips, strict=True):
        np.testing.assert_allclose(row, encoder.embed(clip, 24_000), atol=1e-4)
    assert encoder.embed_batch([], 24_000).shape == (0, 256)


def test_cosine_similarity() -> None:
    assert cosine_similarity(np.array([1.0, 0.0]), np.array([2.0, 0.0])) == pytest.approx(1.0)
    assert cosine_similarity(np.array([1.0, 0.0]), np.array([0.0, 3.0])) == pytest.approx(0.0)
    assert cosine_similarity(np.array([1.0, 1.0]), np.array([-1.0, -1.0])) == pytest.approx(-1.0)
    assert cosine_similarity(np.zeros(2), np.array([1.0, 0.0])) == 0.0  # no division by zero


def test_an_unknown_encoder_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(SpeakerEncoderError, match="resemblyzer or speechbrain"):
        load_speaker_encoder("wav2vec")

from __future__ import annotations

import json
import random
from pathlib import Path

import soundfile as sf

from training.config import SynthCorpusConfig
from training.corpus import choose_speakers, make_sentence


def test_sentences_are_deterministic_and_within_the_word_range() -> None:
    first = [make_sentence(random.Random(3), 4, 12) for _ in range(5)]
    again = [make_sentence(random.Random(3), 4, 12) for _ in range(5)]
    assert first == again
    rng = random.Random(0)
    sentences = {make_sentence(rng, 4, 12) for _ in range(40)}
    assert len(sentences) > 20  # varied
    assert all(4 <= len(s.split()) <= 12 for s in sentences)


def test_speakers_are_distinct_voices_with_their_own_speed_and_pitch() -> None:
    speakers = choose_speakers(SynthCorpusConfig(num_speakers=30, seed=1))
    assert len({s.voice for s in speakers}) == 30
    assert len({s.name for s in speakers}) == 30
    assert len({(s.speed_wpm, s.pitch) for s in speakers}) > 10


def test_synth_writes_a_multi_speaker_manifest_of_real_audio(corpus_dir: Path) -> None:
    rows = [json.loads(line) for line in (corpus_dir / "manifest.jsonl").read_text().splitlines()]
    real = [row for row in rows if row["audio"].startswith("wavs/")]
    assert len({row["speaker"] for row in real if row["speaker"].startswith("spk0")}) == 3
    audio, rate = sf.read(corpus_dir / real[0]["audio"])
    assert rate == 22_050 and audio.shape[0] > rate // 2 and abs(audio).max() > 0.01
    heldout = (corpus_dir / "heldout.jsonl").read_text().splitlines()
    assert len(heldout) == 3

"""The Python API on the real runtime: the tiny random model for behaviour, the bundled default for the examples."""

from __future__ import annotations

import doctest
import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import smalltts.api
from model.errors import InputError
from model.runtime.synthesizer import StageTimings, SynthesisRequest, SynthesisResult
from model.text import estimate_duration_s, tokenize
from smalltts import SmallTTS, Speech, Utterance, Voice

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_module_examples_run() -> None:
    result = doctest.testmod(smalltts.api, raise_on_error=False, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(match.group(1), "README.md", "exec"), namespace)
    speech = namespace["speech"]
    assert isinstance(speech, Speech)
    assert sf.info(tmp_path / "hello.wav").frames == speech.samples.shape[0]
    again = namespace["again"]
    assert isinstance(again, Speech) and again.seed == speech.seed


def test_say_makes_the_asked_duration_and_reports_its_seed(tiny_tts: SmallTTS, voice_file: Path) -> None:
    speech = tiny_tts.say("Hello there [laughter]!", voice=voice_file, duration=3.0, seed=7)
    assert (
        speech.samples.shape == (23 * 3200,) and speech.sample_rate == 24_000 and speech.duration == 23 * 3200 / 24_000
    )
    assert speech.seed == 7 and speech.text == "Hello there [laughter]!"


def test_without_a_seed_each_call_draws_one_and_it_remakes_the_audio(tiny_tts: SmallTTS, voice_file: Path) -> None:
    first, second = (tiny_tts.say("random seed", voice=voice_file, duration=1.0) for _ in range(2))
    assert first.seed != second.seed
    again = tiny_tts.say("random seed", voice=voice_file, duration=1.0, seed=first.seed)
    assert np.array_equal(again.samples, first.samples)


def test_say_many_is_one_batched_call_equal_to_one_by_one(
    tiny_tts: SmallTTS, voice_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [
        Utterance("first line", voice=voice_file, duration=1.0, seed=1),
        Utterance("a second, longer line", voice=voice_file, seed=2),
    ]
    alone = [tiny_tts.say(i.text, voice=i.voice, duration=i.duration, seed=i.seed) for i in items]
    calls: list[int] = []
    real = tiny_tts.synthesizer.synthesize_batch

    def counting(requests: Sequence[SynthesisRequest], timings: StageTimings | None = None) -> list[SynthesisResult]:
        calls.append(len(requests))
        return real(requests, timings)

    monkeypatch.setattr(tiny_tts.synthesizer, "synthesize_batch", counting)
    together = tiny_tts.say_many(items)
    assert calls == [2]
    for a, b in zip(alone, together, strict=True):
        assert np.allclose(a.samples, b.samples, atol=1e-5) and a.seed == b.seed  # padding reorders float sums


def test_a_transcription_goes_before_the_text_and_leaves_the_estimate_alone(
    tiny_tts: SmallTTS, voice_file: Path
) -> None:
    text, heard = "New words to say.", "What the reference says."
    plain = tiny_tts.prepare(Utterance(text, voice=voice_file, seed=0))
    prepared = tiny_tts.prepare(Utterance(text, voice=voice_file, seed=0, transcription=heard))
    assert tuple(prepared.request.token_ids) == tokenize(heard).ids + tokenize(text).ids
    assert prepared.request.duration_s == plain.request.duration_s == estimate_duration_s(tokenize(text))
    with_transcription = tiny_tts.render([prepared])[0]
    assert not np.array_equal(with_transcription.samples, tiny_tts.render([plain])[0].samples)


def test_voices_from_files_are_cached_and_samples_match_files(tiny_tts: SmallTTS, voice_file: Path) -> None:
    voice = tiny_tts.voice(voice_file)
    assert isinstance(voice, Voice) and tiny_tts.voice(str(voice_file)) is voice
    samples, rate = sf.read(voice_file, dtype="float32")
    from_samples = tiny_tts.voice(samples, sample_rate=rate)
    assert np.allclose(from_samples.latents, voice.latents, atol=1e-4)
    with pytest.raises(ValueError, match="sample_rate"):
        tiny_tts.voice(samples)


def test_save_and_to_bytes_by_format(tiny_tts: SmallTTS, voice_file: Path, tmp_path: Path) -> None:
    speech = tiny_tts.say("formats", voice=voice_file, duration=1.0, seed=1)
    assert sf.info(speech.save(tmp_path / "a" / "x.ogg")).format == "OGG"
    assert sf.info(io.BytesIO(speech.to_bytes("flac"))).format == "FLAC"
    with pytest.raises(InputError, match=r"\.wav, \.flac or \.ogg"):
        speech.save(tmp_path / "x.mp4")


def test_mistakes_raise_clear_errors(tiny_tts: SmallTTS, voice_file: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="between 0.5 and 30"):  # the service's limits, not the runtime's wider ones
        tiny_tts.say("too long", voice=voice_file, duration=45.0)
    with pytest.raises(InputError, match="steps"):
        tiny_tts.say("too many steps", voice=voice_file, steps=33)
    with pytest.raises(InputError, match="seed"):
        tiny_tts.say("negative seed", voice=voice_file, seed=-1)
    with pytest.raises(InputError, match="empty"):
        tiny_tts.say("   ", voice=voice_file)
    with pytest.raises(FileNotFoundError, match="reference file not found"):
        tiny_tts.say("no file", voice=tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="ships no reference.wav"):  # the tiny model has no default voice
        tiny_tts.say("no voice")
    with pytest.raises(ValueError, match="device must be"):
        SmallTTS(device="tpu")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SmallTTS(tmp_path / "nowhere")

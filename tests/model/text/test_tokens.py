from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import pytest

from model.errors import InputError
from model.text import tokens as tokens_module
from model.text.normalize import normalize_text
from model.text.phonemize import Phonemizer
from model.text.tokens import (
    TextTokens,
    duration_features,
    estimate_duration_s,
    original_estimate_duration_s,
    tokenize,
)
from model.text.vocab import SYMBOL_TO_ID, decode_ids
from tests.model.text.duration_sentences import CALIBRATION_SENTENCES, HELD_OUT_SENTENCES


def _ids(phonemes: str) -> tuple[int, ...]:
    return tuple(SYMBOL_TO_ID[character] for character in phonemes)


class FakePhonemizer(Phonemizer):
    """Returns canned phonemes and records what it was asked, so the splitting logic is tested alone."""

    def __init__(self, answers: dict[str, str]) -> None:
        super().__init__()
        self.answers = answers
        self.calls: list[str] = []

    def phonemize(self, text: str) -> str:
        self.calls.append(text)
        return self.answers[text]


# --- tags and segments (unit, fake phonemizer) -------------------------------------------------------------


def test_segments_are_phonemized_alone_and_joined_without_separator() -> None:
    fake = FakePhonemizer({"Hello ": "həlˈoʊ", " world": "wˈɜːld"})
    result = tokenize("Hello [laughter] world", phonemizer=fake)
    assert fake.calls == ["Hello ", " world"]
    assert result.ids == _ids("həlˈoʊ") + (188,) * 4 + _ids("wˈɜːld")
    assert result.phonemes == "həlˈoʊ[laughter]wˈɜːld"
    assert result.warnings == ()


@pytest.mark.parametrize("written", ["[laughter]", "[Laughter]", "[LAUGHTER]"])
def test_tags_ignore_case_and_repeat_four_times(written: str) -> None:
    result = tokenize(written, phonemizer=FakePhonemizer({}))
    assert result.ids == (188, 188, 188, 188)
    assert result.phonemes == "[laughter]"


def test_text_of_only_tags() -> None:
    result = tokenize("[sigh] [cough]", phonemizer=FakePhonemizer({}))
    assert result.ids == (191,) * 4 + (180,) * 4
    assert decode_ids(result.ids) == "[sigh]" * 4 + "[cough]" * 4


def test_unknown_tag_is_not_spoken_but_reported() -> None:
    result = tokenize("[foo] hi [Bar]", phonemizer=FakePhonemizer({" hi ": "hˈaɪ"}))
    assert result.ids == _ids("hˈaɪ")
    assert result.warnings == ("unknown tag [foo] ignored", "unknown tag [Bar] ignored")


def test_characters_missing_from_the_vocabulary_are_reported_once_each() -> None:
    result = tokenize("x", phonemizer=FakePhonemizer({"x": "(ə) 7 (ə)"}))
    assert result.ids == _ids("ə  ə")
    assert result.phonemes == "(ə) 7 (ə)"
    (warning,) = result.warnings
    assert "'(' (U+0028" in warning
    assert "')' (U+0029" in warning
    assert "'7' (U+0037" in warning
    assert warning.count("'('") == 1


def test_a_long_list_of_missing_characters_is_shortened() -> None:
    foreign = "".join(chr(0x4E00 + offset) for offset in range(30))
    result = tokenize("x", phonemizer=FakePhonemizer({"x": "ə" + foreign}))
    (warning,) = result.warnings
    assert warning.count("U+") == 20
    assert warning.endswith("and 10 more")


def test_max_tokens_is_checked_after_tokenizing() -> None:
    fake = FakePhonemizer({"abc": "abc"})
    assert tokenize("abc", max_tokens=3, phonemizer=fake).ids == _ids("abc")
    with pytest.raises(InputError, match="the limit is 2") as raised:
        tokenize("abc", max_tokens=2, phonemizer=fake)
    assert (raised.value.field, raised.value.code) == ("text", "text_too_long")


def test_huge_text_is_refused_before_espeak_runs() -> None:
    fake = FakePhonemizer({})
    text = "a" * (10 * tokens_module.MAX_CHARS_PER_TOKEN + 1)
    with pytest.raises(InputError, match="the limit is 80 characters") as raised:
        tokenize(text, max_tokens=10, phonemizer=fake)
    assert raised.value.code == "text_too_long"
    assert fake.calls == []


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="text is empty") as raised:
        tokenize(text, phonemizer=FakePhonemizer({}))
    assert (raised.value.field, raised.value.code, raised.value.status) == ("text", "text_empty", 422)


def test_max_tokens_below_one_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        tokenize("hi", max_tokens=0, phonemizer=FakePhonemizer({}))


# --- real espeak-ng ----------------------------------------------------------------------------------------


def test_hello_world_ids() -> None:
    result = tokenize("Hello world!")
    assert result.phonemes == "həlˈoʊ wˈɜːld !"
    assert result.ids == (48, 81, 52, 154, 55, 133, 14, 63, 154, 85, 156, 52, 44, 14, 5)
    assert result.warnings == ()


def test_spec_sample_prompt_with_tags() -> None:
    result = tokenize("that joke is good [laughter] [laughter] and i cannot stop laughing.")
    assert result.ids.count(188) == 8
    assert decode_ids(result.ids).startswith("ðæt dʒˈoʊk ɪz ɡˈʊd[laughter]")
    assert result.warnings == ()


def test_real_parentheses_are_reported() -> None:
    result = tokenize("one (two)")
    assert result.ids == _ids("wˈʌn  tˈuː ")
    assert len(result.warnings) == 1
    assert "'('" in result.warnings[0]
    assert "')'" in result.warnings[0]


@pytest.mark.parametrize(("text", "reason"), [("[foo]", "unknown tag [foo] ignored"), ("-", "'-' has nothing")])
def test_text_without_speakable_tokens_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InputError, match="no speakable tokens") as raised:
        tokenize(text)
    assert raised.value.code == "text_no_tokens"
    assert reason in raised.value.message


def test_only_unknown_characters_is_refused() -> None:
    with pytest.raises(InputError) as raised:
        tokenize("(((")  # espeak keeps "( ( (": the spaces map to ids, but nothing is said
    assert raised.value.code == "text_no_tokens"
    assert "'('" in raised.value.message


def test_only_punctuation_is_refused() -> None:
    with pytest.raises(InputError) as raised:
        tokenize("... !?")
    assert raised.value.code == "text_no_tokens"


# --- duration ----------------------------------------------------------------------------------------------


def test_duration_features() -> None:
    features = duration_features(tokenize("Well, that's one way... to look at it!").ids)
    assert features.pauses == 2  # "," and "...", not the final "!"
    assert features.tag_tokens == 0
    assert features.stressed_syllables >= 5
    assert duration_features((188,) * 8).tag_tokens == 8


def test_duration_is_clamped() -> None:
    assert estimate_duration_s(TextTokens(ids=(), phonemes="", warnings=())) == 0.5
    assert estimate_duration_s(TextTokens(ids=(41,) * 4096, phonemes="", warnings=())) == 30.0
    assert original_estimate_duration_s("hi") == 0.5
    assert original_estimate_duration_s("x" * 1000) == 30.0
    assert original_estimate_duration_s("[laughter] " * 3) == pytest.approx(33 / 11.5)


def test_each_tag_adds_a_fixed_time() -> None:
    without_tag = estimate_duration_s(tokenize("I am getting a cold."))
    with_tags = estimate_duration_s(tokenize("I am getting a cold [sniff] [sniff]."))
    assert with_tags - without_tag == pytest.approx(8 * tokens_module.TAG_TOKEN_S)


def _espeak_duration_s(text: str, folder: Path) -> float:
    path = folder / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), normalize_text(text)], check=True)
    with wave.open(str(path)) as audio:
        return audio.getnframes() / audio.getframerate()


@pytest.fixture(scope="module")
def measured() -> dict[str, tuple[list[TextTokens], np.ndarray]]:
    """Real espeak-ng speech at its default rate, for both sentence sets."""
    result = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, sentences in (("calibration", CALIBRATION_SENTENCES), ("held_out", HELD_OUT_SENTENCES)):
            tokens = [tokenize(sentence) for sentence in sentences]
            durations_s = np.array([_espeak_duration_s(sentence, Path(folder)) for sentence in sentences])
            result[name] = (tokens, durations_s)
    return result


def test_estimate_beats_the_original_heuristic_on_held_out_speech(
    measured: dict[str, tuple[list[TextTokens], np.ndarray]],
) -> None:
    tokens, durations_s = measured["held_out"]
    ours_s = np.array([estimate_duration_s(item) for item in tokens])
    original_s = np.array([original_estimate_duration_s(sentence) for sentence in HELD_OUT_SENTENCES])
    refitted_rate_s = np.clip([len(sentence) / 16.8 for sentence in HELD_OUT_SENTENCES], 0.5, 30.0)
    ours_error_s = float(np.mean(np.abs(ours_s - durations_s)))
    assert ours_error_s < float(np.mean(np.abs(original_s - durations_s)))
    # Also better than the best constant character rate for espeak's voice (fitted on the calibration set).
    assert ours_error_s < float(np.mean(np.abs(refitted_rate_s - durations_s)))
    assert ours_error_s < 0.2


def test_constants_match_a_fresh_least_squares_fit(measured: dict[str, tuple[list[TextTokens], np.ndarray]]) -> None:
    tokens, durations_s = measured["calibration"]
    features = [duration_features(item.ids) for item in tokens]
    design = np.array([[f.phones, f.stressed_syllables, f.pauses, 1.0] for f in features])
    fitted, *_ = np.linalg.lstsq(design, durations_s, rcond=None)
    fitted_error_s = float(np.mean(np.abs(design @ fitted - durations_s)))
    ours_error_s = float(np.mean(np.abs([estimate_duration_s(item) for item in tokens] - durations_s)))
    assert ours_error_s <= fitted_error_s + 0.02

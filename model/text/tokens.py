"""Text with [tags] -> the token ids the text encoder reads, plus a speech-duration estimate.

Token ids (spec model.md §2.3): the text is split with `\\[(\\w+)\\]`; text parts are phonemized on their own
(`Phonemizer.phonemize`) and every character is mapped through the 198-entry vocabulary; a known tag (any
case) emits its id TAG_REPEAT = 4 times. Parts are concatenated with no separator; there is no BOS/EOS and
padding (0) is never emitted. Unlike the original, nothing is dropped silently: unknown tags and characters
the vocabulary lacks come back in `TextTokens.warnings`.

Duration estimate (`estimate_duration_s`), replacing the original's clamp(len(text) / 11.5, 0.5, 30) s:

    duration_s = 0.056 * phones + 0.074 * stressed_syllables + 0.295 * pauses + 0.455
                 + 0.2 * tag_tokens, clamped to [0.5, 30]

    phones              letter and IPA ids (15..153 and ᵻ); not stress, length or other marks
    stressed_syllables  primary stress marks ˈ (stressed syllables are longer)
    pauses              runs of , ; : . ! ? — … inside the text; a run at the end is not a pause
    tag_tokens          event-tag ids, 4 per tag, so 0.8 s per [laughter]; espeak cannot laugh, so this
                        one is an assumption (a short nonverbal sound), not a measurement

Calibration: 60 varied English sentences (1-25 words: statements, questions, exclamations, lists, quotes,
ellipses, semicolons; 0.7-6.5 s) were normalised and spoken by `espeak-ng -v en-us -w` at its default rate
(175 words/min); the wav length is the target. A least-squares fit gave the constants above (rounded);
leave-one-out mean absolute error 0.12 s. Errors against espeak-ng, on the 60 calibration sentences and on
20 held-out ones (0.8-5.0 s); both sets are in tests/model/text/duration_sentences.py, and the tests
re-measure them:

    method                         calibration set (MAE / MAPE)   held-out set (MAE / MAPE)
    ours                           0.113 s / 4.3 %                0.117 s / 3.8 %
    original, 11.5 chars/s         1.203 s / 38.1 %               1.304 s / 39.1 %
    best single rate, 16.8 chars/s 0.242 s / 11.1 %               0.228 s / 10.1 %

The original's rate is slow for espeak's voice (it overestimates by ~1.2 s on average); even refitted, a
character rate errs twice as much as the phoneme count, because spelling length tracks speech poorly
("though" vs "tacit") and pauses are invisible to it. The estimate targets espeak's default pace; a voice
cloned from a slower speaker needs proportionally more time.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from model.errors import InputError
from model.text.phonemize import Phonemizer, get_phonemizer
from model.text.vocab import SYMBOL_TO_ID, TAG_REPEAT, is_tag_id, tag_id

_TAG_SPLIT_RE = re.compile(r"\[(\w+)\]")

# Raw text longer than this many characters per allowed token is refused before espeak runs: no English
# text is that sparse in phonemes, and phonemizing megabytes only to refuse them would waste a worker.
MAX_CHARS_PER_TOKEN = 8

_FIRST_LETTER_ID = SYMBOL_TO_ID["A"]
_MAX_LISTED_CHARACTERS = 20  # keeps a warning short when a whole foreign script is dropped


@dataclass(frozen=True)
class TextTokens:
    """`ids`: vocabulary ids (1..197). `phonemes`: the phonemized parts concatenated as the ids are, with a
    known tag written once as "[tag]" (characters the vocabulary lacks are still in it). `warnings`: what was
    ignored, for the caller to show."""

    ids: tuple[int, ...]
    phonemes: str
    warnings: tuple[str, ...]


def _describe(character: str) -> str:
    name = unicodedata.name(character, "unnamed")
    return f"{character!r} (U+{ord(character):04X} {name.lower()})"


def _is_speech_id(token_id: int) -> bool:
    """A letter, an IPA symbol or a tag: something the voice says, unlike spaces and punctuation."""
    return token_id >= _FIRST_LETTER_ID


def tokenize(text: str, *, max_tokens: int = 4096, phonemizer: Phonemizer | None = None) -> TextTokens:
    """Token ids for `text`, which may hold [tags] such as [laughter].

    Raises:
        InputError: field "text"; code "text_empty" (nothing but whitespace), "text_no_tokens" (no phoneme
            or tag is left, only spaces and punctuation at most) or "text_too_long" (more than `max_tokens`
            tokens).
        ValueError: `max_tokens` < 1.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    if not text.strip():
        raise InputError("text is empty", field="text", code="text_empty")
    max_chars = max_tokens * MAX_CHARS_PER_TOKEN
    if len(text) > max_chars:
        raise InputError(
            f"text is {len(text)} characters long; the limit is {max_chars} characters "
            f"(and {max_tokens} phoneme tokens)",
            field="text",
            code="text_too_long",
        )
    phonemizer = phonemizer if phonemizer is not None else get_phonemizer()

    ids: list[int] = []
    pieces: list[str] = []
    warnings: list[str] = []
    unknown: dict[str, None] = {}  # ordered set
    for index, part in enumerate(_TAG_SPLIT_RE.split(text)):
        if index % 2 == 1:  # a bracket label
            label_id = tag_id(part)
            if label_id is None:
                warnings.append(f"unknown tag [{part}] ignored")
            else:
                ids.extend([label_id] * TAG_REPEAT)
                pieces.append(f"[{part.lower()}]")
        elif part.strip():
            phonemes = phonemizer.phonemize(part)
            if not phonemes:
                warnings.append(f"{part.strip()!r} has nothing espeak-ng can read; ignored")
            pieces.append(phonemes)
            for character in phonemes:
                symbol_id = SYMBOL_TO_ID.get(character)
                if symbol_id is None:
                    unknown[character] = None
                else:
                    ids.append(symbol_id)
    if unknown:
        listed = ", ".join(_describe(character) for character in list(unknown)[:_MAX_LISTED_CHARACTERS])
        more = len(unknown) - _MAX_LISTED_CHARACTERS
        listed += f" and {more} more" if more > 0 else ""
        warnings.append(f"characters missing from the phoneme vocabulary were dropped: {listed}")

    if not any(_is_speech_id(token_id) for token_id in ids):  # spaces and punctuation alone say nothing
        reason = f" ({'; '.join(warnings)})" if warnings else ""
        raise InputError(
            f"text yields no speakable tokens, no phonemes and no known [tags]{reason}",
            field="text",
            code="text_no_tokens",
        )
    if len(ids) > max_tokens:
        raise InputError(
            f"text yields {len(ids)} phoneme tokens; the limit is {max_tokens}", field="text", code="text_too_long"
        )
    return TextTokens(ids=tuple(ids), phonemes="".join(pieces), warnings=tuple(warnings))


# --- duration --------------------------------------------------------------------------------------------

PHONE_S = 0.056
STRESSED_SYLLABLE_S = 0.074
PAUSE_S = 0.295
BASE_S = 0.455
TAG_TOKEN_S = 0.2
MIN_DURATION_S = 0.5
MAX_DURATION_S = 30.0
ORIGINAL_CHARS_PER_S = 11.5

_PRIMARY_STRESS_ID = SYMBOL_TO_ID["ˈ"]
_LAST_IPA_LETTER_ID = SYMBOL_TO_ID["ǃ"]
_PAUSE_IDS = frozenset(SYMBOL_TO_ID[symbol] for symbol in ",;:.!?—…")
# Inside a pause run these neither end it nor start one: "word ," and "word !\"" are one pause each.
_NEUTRAL_IDS = frozenset(SYMBOL_TO_ID[symbol] for symbol in ' "«»')


@dataclass(frozen=True)
class DurationFeatures:
    phones: int
    stressed_syllables: int
    pauses: int
    tag_tokens: int


def duration_features(ids: tuple[int, ...] | list[int]) -> DurationFeatures:
    """Count what `estimate_duration_s` weighs (see the module docstring)."""
    end = len(ids)
    while end and (ids[end - 1] in _PAUSE_IDS or ids[end - 1] in _NEUTRAL_IDS):
        end -= 1
    pauses = 0
    in_pause = False
    for token_id in ids[:end]:
        if token_id in _PAUSE_IDS:
            pauses += 0 if in_pause else 1
            in_pause = True
        elif token_id not in _NEUTRAL_IDS:
            in_pause = False
    return DurationFeatures(
        phones=sum(
            1
            for token_id in ids
            if _FIRST_LETTER_ID <= token_id <= _LAST_IPA_LETTER_ID or token_id == SYMBOL_TO_ID["ᵻ"]
        ),
        stressed_syllables=sum(1 for token_id in ids if token_id == _PRIMARY_STRESS_ID),
        pauses=pauses,
        tag_tokens=sum(1 for token_id in ids if is_tag_id(token_id)),
    )


def estimate_duration_s(tokens: TextTokens) -> float:
    """Seconds of speech `tokens` should take, from phoneme counts calibrated on espeak-ng (module docstring)."""
    features = duration_features(tokens.ids)
    duration_s = (
        PHONE_S * features.phones
        + STRESSED_SYLLABLE_S * features.stressed_syllables
        + PAUSE_S * features.pauses
        + TAG_TOKEN_S * features.tag_tokens
        + BASE_S
    )
    return min(max(duration_s, MIN_DURATION_S), MAX_DURATION_S)


def original_estimate_duration_s(text: str) -> float:
    """The original's heuristic (spec §1.8): raw characters, tags included, at 11.5 per second."""
    return min(max(len(text) / ORIGINAL_CHARS_PER_S, MIN_DURATION_S), MAX_DURATION_S)

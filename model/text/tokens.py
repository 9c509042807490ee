"""Text with [tags] -> the token ids the text encoder reads, plus a speech-duration estimate.

Token ids (spec model.md §2.3): the text is split with `\\[(\\w+)\\]`; text parts are phonemized on their own
(`Phonemizer.phonemize`) and every character is mapped through the 198-entry vocabulary; a known tag (any
case) emits its id TAG_REPEAT = 4 times. Parts are concatenated with no separator; there is no BOS/EOS and
padding (0) is never emitted. Unlike the original, nothing is dropped silently: unknown tags and characters
the vocabulary lacks come back in `TextTokens.warnings`.

Duration estimate: see `estimate_duration_s`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from model.errors import InputError
from model.text.phonemize import Phonemizer, get_phonemizer
from model.text.vocab import SYMBOL_TO_ID, TAG_REPEAT, tag_id

_TAG_SPLIT_RE = re.compile(r"\[(\w+)\]")

# Raw text longer than this many characters per allowed token is refused before espeak runs: no English
# text is that sparse in phonemes, and phonemizing megabytes only to refuse them would waste a worker.
MAX_CHARS_PER_TOKEN = 8


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


def tokenize(text: str, *, max_tokens: int = 4096, phonemizer: Phonemizer | None = None) -> TextTokens:
    """Token ids for `text`, which may hold [tags] such as [laughter].

    Raises:
        InputError: field "text"; code "text_empty" (nothing but whitespace), "text_no_tokens" (nothing
            speakable is left) or "text_too_long" (more than `max_tokens` tokens).
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
            pieces.append(phonemes)
            for character in phonemes:
                symbol_id = SYMBOL_TO_ID.get(character)
                if symbol_id is None:
                    unknown[character] = None
                else:
                    ids.append(symbol_id)
    if unknown:
        listed = ", ".join(_describe(character) for character in unknown)
        warnings.append(f"characters missing from the phoneme vocabulary were dropped: {listed}")

    if not ids:
        reason = f" ({'; '.join(warnings)})" if warnings else ""
        raise InputError(f"text yields no speakable tokens{reason}", field="text", code="text_no_tokens")
    if len(ids) > max_tokens:
        raise InputError(
            f"text yields {len(ids)} phoneme tokens; the limit is {max_tokens}", field="text", code="text_too_long"
        )
    return TextTokens(ids=tuple(ids), phonemes="".join(pieces), warnings=tuple(warnings))

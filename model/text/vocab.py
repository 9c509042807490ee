"""The phoneme vocabulary of the published smalltts weights: 198 ids, 0 = padding.

The embedding rows of the published text encoder are indexed by these ids, so the order below is a contract
(spec model.md §2.4). The table is built the way the original built it: the punctuation string, the ASCII
letters and the IPA string are concatenated and de-duplicated in first-seen order (the punctuation string
repeats `"` and the IPA string repeats `'`), which gives ids 1-174; the 23 event tags follow as ids 175-197.

    0         padding (also the CTC blank of the ASR model; never emitted by the front end)
    1-14      punctuation and the space
    15-66     A-Z, a-z
    67-174    IPA letters, stress and length marks, tone arrows, `'`, U+0329, ᵻ
    175-197   event tags such as [laughter]; each one is emitted TAG_REPEAT times
"""

from __future__ import annotations

import string
from collections.abc import Iterable

# 16 characters; the two extra `"` are duplicates the original carried over when curly quotes were made ASCII.
_PUNCTUATION = ';:,.!?¡¿—…"«»"" '
# 109 characters; the second `'` is a duplicate. U+0329 (combining vertical line below) is written as an
# escape because it has no base character to sit on.
_IPA = (
    "ɑɐɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢǀǁǂǃˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘'\u0329'ᵻ"
)

TAGS: tuple[str, ...] = (
    "babble",
    "boo",
    "burp",
    "chant",
    "cheer",
    "cough",
    "cry",
    "gargle",
    "gasp",
    "groan",
    "grunt",
    "hiccup",
    "hum",
    "laughter",
    "moan",
    "shout",
    "sigh",
    "sing",
    "sneeze",
    "sniff",
    "snore",
    "whisper",
    "whistle",
)
TAG_REPEAT = 4  # a known tag contributes its id this many times (spec §2.3, NV_REPEAT)

PAD_ID = 0
# Uppercase first (A = 15, a = 41): the opposite of Python's `string.ascii_letters`.
_LETTERS = string.ascii_uppercase + string.ascii_lowercase
_CHARACTERS: tuple[str, ...] = tuple(dict.fromkeys(_PUNCTUATION + _LETTERS + _IPA))
SYMBOLS: tuple[str, ...] = _CHARACTERS + tuple(f"[{tag}]" for tag in TAGS)
VOCAB_SIZE = len(SYMBOLS) + 1  # + padding

SYMBOL_TO_ID: dict[str, int] = {symbol: index + 1 for index, symbol in enumerate(SYMBOLS)}
FIRST_TAG_ID = len(_CHARACTERS) + 1
_TAG_TO_ID: dict[str, int] = {tag: FIRST_TAG_ID + index for index, tag in enumerate(TAGS)}

# Checked at import: a wrong table would silently scramble every embedding row of the published weights.
if VOCAB_SIZE != 198 or FIRST_TAG_ID != 175 or len(_PUNCTUATION) != 16 or len(_IPA) != 109:
    raise RuntimeError("the phoneme vocabulary does not match the published 198-entry table")


def tag_id(label: str) -> int | None:
    """The id of an event tag given without brackets, ignoring case (`"Laughter"` -> 188); None if unknown."""
    return _TAG_TO_ID.get(label.lower())


def is_tag_id(token_id: int) -> bool:
    return FIRST_TAG_ID <= token_id < VOCAB_SIZE


def decode_ids(ids: Iterable[int]) -> str:
    """The symbols of `ids` joined without separator; tags are shown as `[tag]`, padding as nothing.

    Raises:
        ValueError: an id outside 0..VOCAB_SIZE-1.
    """
    parts: list[str] = []
    for token_id in ids:
        if not 0 <= token_id < VOCAB_SIZE:
            raise ValueError(f"token id {token_id} is outside the vocabulary (0..{VOCAB_SIZE - 1})")
        if token_id != PAD_ID:
            parts.append(SYMBOLS[token_id - 1])
    return "".join(parts)

"""Torch-free text front end: normalize, phonemize with espeak-ng, map to the 198-id vocabulary.

tokens = tokenize("Hello [laughter] world!")   # TextTokens(ids, phonemes, warnings)
duration_s = estimate_duration_s(tokens)
"""

from __future__ import annotations

from model.text.normalize import normalize_text
from model.text.phonemize import get_phonemizer
from model.text.tokens import TextTokens, estimate_duration_s, tokenize
from model.text.vocab import TAGS, VOCAB_SIZE

__all__ = ["TAGS", "VOCAB_SIZE", "TextTokens", "estimate_duration_s", "get_phonemizer", "normalize_text", "tokenize"]

"""The open-vocabulary sentence sources: disjoint, varied, punctuated, and apart from the everyday test list."""

from __future__ import annotations

import random
import re

import pytest

from training.config import SynthCorpusConfig
from training.sentences import (
    COVERAGE_SENTENCES,
    everyday_sentences,
    iter_sentences,
    source_sentences,
)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z ]", "", text.lower()).strip()


@pytest.fixture(scope="module")
def wordnet_stream() -> list[str]:
    stream = iter_sentences("wordnet", random.Random(0), min_words=3, max_words=16)
    return [next(stream) for _ in range(3000)]


def test_wordnet_sentences_are_varied_punctuated_and_exercise_the_normaliser(wordnet_stream: list[str]) -> None:
    assert len(set(wordnet_stream)) > 2900
    assert all(3 <= len(s.split()) <= 16 for s in wordnet_stream)
    assert all(s[0].isupper() or s[0].isdigit() or s[0] in "$£\"'" for s in wordnet_stream)
    endings = {s[-1] for s in wordnet_stream}
    assert {".", "?", "!"} <= endings
    assert sum("?" in s for s in wordnet_stream) > 30 and sum(s.endswith("!") for s in wordnet_stream) > 100
    assert sum(bool(re.search(r"[0-9$£%]", s)) for s in wordnet_stream) > 150  # numbers, money, dates, percent
    assert sum(bool(re.search(r"\b(Dr|Mr|Mrs|Ms|Prof|Capt|St)\.", s)) for s in wordnet_stream) > 10
    words = {w.lower().strip(".,!?;:'\"") for s in wordnet_stream for w in s.split()}
    assert len(words) > 5000  # open vocabulary: the old grammar had about 60 words


def test_stream_is_deterministic_in_its_seed() -> None:
    a = iter_sentences("fortunes", random.Random(5), min_words=3, max_words=16)
    b = iter_sentences("fortunes", random.Random(5), min_words=3, max_words=16)
    assert [next(a) for _ in range(50)] == [next(b) for _ in range(50)]


def test_held_out_and_everyday_sentences_share_no_text_with_training() -> None:
    training = {_norm(s) for s in source_sentences("wordnet")}
    heldout = {_norm(s) for s in source_sentences("fortunes")}
    assert len(training) > 40_000 and len(heldout) > 3_000
    assert len(training & heldout) / len(heldout) < 0.002  # a handful of stock phrases at most
    everyday = everyday_sentences()
    assert len(everyday) == 50 and len(set(everyday)) == 50
    assert not {_norm(s) for s in everyday} & (training | heldout)
    assert not {_norm(s) for s in COVERAGE_SENTENCES} & {_norm(s) for s in everyday}


def test_a_corpus_config_refuses_one_source_for_both_splits() -> None:
    with pytest.raises(ValueError, match="disjoint"):
        SynthCorpusConfig(text_source="wordnet", heldout_text_source="wordnet")
    with pytest.raises(ValueError, match="min_words"):
        SynthCorpusConfig(min_words=5, max_words=3)

"""Open-vocabulary English sentences for the espeak-ng corpus, from text that Debian ships (no download).

Two disjoint sources, so held-out sentences share no text with training:

    wordnet    the example sentences inside WordNet 3.0's glosses (Debian `wordnet-base`, about 48,000,
               everyday usage: "he ran into the house"): the TRAINING source
    fortunes   the classic fortune cookies (Debian `fortunes-min` + `fortunes`): the HELD-OUT source

Each source sentence is cleaned (whitespace, a capital letter, final punctuation; WordNet's examples have none,
so those that start like a question get "?" and a few others "!"), and a share of sentences come from small
templates that exercise the normaliser (numbers, dates, times, money, percentages, abbreviations), because
neither source has many. `everyday_sentences()` is the committed list of 50 evaluation sentences that come
from neither source.

    python -m training.sentences --source wordnet --count 5
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Literal

from training.errors import TrainingBaseError

SentenceSource = Literal["grammar", "wordnet", "fortunes"]

WORDNET_DIR = Path("/usr/share/wordnet")
FORTUNES_DIR = Path("/usr/share/games/fortunes")
EVERYDAY_PATH = Path(__file__).with_name("everyday_sentences.txt")
# Fortune files with plain sentences (the offensive, ascii-art and code-heavy ones are left out).
FORTUNE_FILES = (
    "fortunes", "literature", "people", "wisdom", "work", "food", "pets", "love", "men-women", "education",
    "science", "miscellaneous", "platitudes", "songs-poems", "sports", "law", "politics", "humorists",
)  # fmt: skip

_QUESTION_STARTS = re.compile(
    r"^(is|are|was|were|do|does|did|can|could|will|would|should|shall|have|has|what|where|why|how|who|when|which)\b",
    re.IGNORECASE,
)
_PLAIN_SENTENCE = re.compile(r"[A-Za-z0-9$£%'\",.;:!? -]+")


# Loan words whose sounds English espeak-ng emits but everyday text almost never needs (r, ç, ɬ, ʲ: found by
# `python -m training.phoneme_report`); the open corpus speaks each of these in several voices.
COVERAGE_SENTENCES = (
    "We took the train from Utrecht to Argyll.",
    "She added a sliced jalapeno to the salad.",
    "The Llano Estacado is a wide and windy plain.",
    "Andre Maurois wrote a famous life of Byron.",
    "The nurse gave him an antiarrhythmic drug.",
    "A jalapeno pepper grows in our garden in Argyll.",
    "Utrecht has an old university and many canals.",
    "The mallard, or Anas platyrhynchos, is a common duck.",
)
COVERAGE_VOICES_PER_SENTENCE = 8


class SentenceSourceError(TrainingBaseError, RuntimeError):
    """A source's Debian package is not installed."""


def _tidy(raw: str, rng: random.Random, *, exclaim_prob: float) -> str | None:
    """One cleaned sentence with a capital letter and final punctuation, or None when it is unusable."""
    text = " ".join(raw.replace("...", ", ").split()).strip(" ;:,-")
    if not text or not _PLAIN_SENTENCE.fullmatch(text) or text.count('"') % 2:
        return None
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?":
        if _QUESTION_STARTS.match(text):
            text += "?"
        else:
            text += "!" if rng.random() < exclaim_prob else "."
    return text


@cache
def _wordnet_examples() -> tuple[str, ...]:
    files = [WORDNET_DIR / f"data.{pos}" for pos in ("noun", "verb", "adj", "adv")]
    if not all(path.is_file() for path in files):
        raise SentenceSourceError(f"WordNet data not found in {WORDNET_DIR} (apt-get install wordnet-base)")
    examples: dict[str, None] = {}
    for path in files:
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:  # the licence header
                continue
            for example in re.findall(r'"([^"]+)"', line.split("|", 1)[1]):
                examples[example.strip()] = None
    return tuple(examples)


@cache
def _fortune_sentences() -> tuple[str, ...]:
    paths = [FORTUNES_DIR / name for name in FORTUNE_FILES if (FORTUNES_DIR / name).is_file()]
    if not paths:
        raise SentenceSourceError(f"no fortune files in {FORTUNES_DIR} (apt-get install fortunes-min fortunes)")
    sentences: dict[str, None] = {}
    for path in paths:
        for entry in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            body = " ".join(re.split(r"\s--\s|\t\t--", entry)[0].split())  # drop the attribution
            for sentence in re.split(r"(?<=[.!?])\s+", body):
                sentences[sentence] = None
    return tuple(sentences)


_NAMES = ("Anna", "Ben", "Carlos", "Diana", "Emma", "Felix", "Grace", "Hiro", "Irene", "James", "Kate", "Liam")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
    "December",
)  # fmt: skip
_THINGS = ("the tickets", "a new phone", "the groceries", "dinner", "the repairs", "a used car", "the rent", "lunch")
_TITLES = ("Dr.", "Mr.", "Mrs.", "Ms.", "Prof.", "Capt.")


def _normaliser_sentence(rng: random.Random) -> str:
    """A sentence with numbers, dates, times, money, percentages or abbreviations (read by our normaliser)."""
    name, month, thing = rng.choice(_NAMES), rng.choice(_MONTHS), rng.choice(_THINGS)
    templates = (
        lambda: f"{name} paid ${rng.randint(2, 999)}.{rng.randint(10, 99)} for {thing}.",
        lambda: f"The meeting moved to {month} {rng.randint(1, 28)}, {rng.randint(1950, 2030)}.",
        lambda: f"We have {rng.randint(2, 9999):,} people on the list and {rng.randint(2, 99)} seats left.",
        lambda: f"Prices rose by {rng.randint(2, 40)}% in {rng.randint(1990, 2029)}.",
        lambda: f"{rng.choice(_TITLES)} {name} lives at {rng.randint(2, 999)} Oak St. near the park.",
        lambda: f"Is it true that {thing} cost £{rng.randint(2, 500)}?",
        lambda: (
            f"The train leaves at {rng.randint(1, 12)}:{rng.choice(('15', '30', '45'))} on the {rng.randint(1, 28)}"
            f"{'th' if rng.random() < 0.5 else 'st'}!"
        ),
        lambda: (
            f"About {rng.randint(2, 9)}/{rng.randint(10, 12)} of the class passed, roughly {rng.randint(50, 99)}.5%."
        ),
        lambda: f"{name} was born on {month} {rng.randint(2, 28)}th and turns {rng.randint(20, 90)} this year.",
        lambda: f"Call {name} before {rng.randint(1, 11)} p.m., it's urgent!",
    )
    return rng.choice(templates)()


def iter_sentences(
    source: SentenceSource,
    rng: random.Random,
    *,
    min_words: int,
    max_words: int,
    normaliser_share: float = 0.08,
    exclaim_prob: float = 0.08,
) -> Iterator[str]:
    """An endless stream of sentences of min_words..max_words words; each source sentence is used once per pass,
    in an order drawn from rng, with `normaliser_share` of the stream from the normaliser templates."""
    if source == "grammar":
        from training.corpus import make_sentence

        while True:
            yield make_sentence(rng, min_words, max_words)
    pool = list(_wordnet_examples() if source == "wordnet" else _fortune_sentences())
    while True:
        rng.shuffle(pool)
        for raw in pool:
            if rng.random() < normaliser_share:
                yield _normaliser_sentence(rng)
            sentence = _tidy(raw, rng, exclaim_prob=exclaim_prob)
            if sentence is not None and min_words <= len(sentence.split()) <= max_words:
                yield sentence


def everyday_sentences() -> list[str]:
    """The 50 committed everyday evaluation sentences (from neither corpus source)."""
    return [line.strip() for line in EVERYDAY_PATH.read_text().splitlines() if line.strip()]


def source_sentences(source: Literal["wordnet", "fortunes"]) -> tuple[str, ...]:
    """Every raw sentence of a source (for disjointness checks)."""
    return _wordnet_examples() if source == "wordnet" else _fortune_sentences()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("grammar", "wordnet", "fortunes"), default="wordnet")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    stream = iter_sentences(args.source, random.Random(args.seed), min_words=3, max_words=16)
    for _ in range(args.count):
        print(next(stream))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

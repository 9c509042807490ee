from __future__ import annotations

from training.phoneme_report import coverage, symbol_counts
from training.sentences import COVERAGE_SENTENCES


def test_counts_are_per_symbol_and_keep_sentence_punctuation() -> None:
    counts = symbol_counts(["Is it cold?", "What a day!"])
    assert counts["?"] == 1 and counts["!"] == 1 and counts["ˈ"] >= 2


def test_coverage_names_the_reference_symbols_a_corpus_lacks() -> None:
    report = coverage(["The cat sat on the mat."], ["The cat sat on the mat.", "Utrecht"])
    assert "ç" in report["missing"] and "æ" not in report["missing"] and report["complete"] is False
    assert coverage(COVERAGE_SENTENCES, ["Utrecht", "Llano", "Argyll"])["complete"] is True

"""How often each phoneme symbol occurs in a corpus, and which symbols English espeak-ng emits that it lacks.

    python -m training.phoneme_report --manifest .smalltts/train/demo/corpus/train.jsonl \
        --out training/demo_state/phonemes.json

"What English espeak-ng emits" is measured, not listed by hand: every lemma of WordNet (about 150,000 English
words and phrases, Debian `wordnet-base`) goes through our front end (normaliser, espeak-ng en-us, tokenizer), and
the speech symbols that come out form the reference set. The corpus must contain each of them.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from training.sentences import WORDNET_DIR, SentenceSourceError


def symbol_counts(texts: Iterable[str], chunk: int = 200) -> Counter[str]:
    """Counts of each vocabulary symbol over the texts' token ids (texts phonemized in chunks for speed)."""
    from model.text import tokenize
    from model.text.vocab import decode_ids, is_tag_id

    counts: Counter[str] = Counter()
    batch: list[str] = []

    def flush() -> None:
        if batch:
            # One espeak-ng call per chunk: the sentences joined as separate sentences.
            ids = tokenize(" ".join(batch), max_tokens=1_000_000).ids
            counts.update(decode_ids([i]) for i in ids if not is_tag_id(i))
            batch.clear()

    for text in texts:
        text = text.strip()
        batch.append(text if text[-1:] in ".!?" else text + ".")
        if len(batch) >= chunk:
            flush()
    flush()
    return counts


def wordnet_lemmas() -> list[str]:
    paths = [WORDNET_DIR / f"index.{pos}" for pos in ("noun", "verb", "adj", "adv")]
    if not all(path.is_file() for path in paths):
        raise SentenceSourceError(f"WordNet index not found in {WORDNET_DIR} (apt-get install wordnet-base)")
    lemmas = []
    for path in paths:
        for line in path.read_text(encoding="latin-1").splitlines():
            if not line.startswith(" "):
                lemmas.append(line.split(" ", 1)[0].replace("_", " "))
    return lemmas


def coverage(corpus_texts: Iterable[str], reference_texts: Iterable[str]) -> dict[str, Any]:
    """The corpus's symbol counts, the reference set, and the reference symbols the corpus lacks."""
    corpus = symbol_counts(corpus_texts)
    reference = symbol_counts(reference_texts)
    missing = sorted(symbol for symbol in reference if corpus[symbol] == 0)
    return {
        "corpus_counts": dict(corpus.most_common()),
        "reference_symbols": sorted(reference),
        "missing": missing,
        "complete": not missing,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True, help="a corpus manifest (.jsonl with text)")
    parser.add_argument("--out", type=Path, required=True, help="the JSON report")
    args = parser.parse_args(argv)
    texts = [json.loads(line)["text"] for line in args.manifest.read_text().splitlines() if line.strip()]
    result = {"manifest": str(args.manifest), "sentences": len(texts), **coverage(texts, wordnet_lemmas())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    counts = result["corpus_counts"]
    print(f"{len(texts)} sentences, {len(counts)} symbols; English espeak-ng emits {len(result['reference_symbols'])}")
    print("rarest: " + ", ".join(f"{s} {n}" for s, n in list(counts.items())[-8:]))
    print("missing: " + (", ".join(result["missing"]) or "none"))
    return 0 if result["complete"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

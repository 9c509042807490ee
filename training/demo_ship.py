"""Ships a trained demo model: its default reference voice, the evaluation ASR, listening samples, loss curves.

    python -m training.demo_ship --corpus .smalltts/train/demo/corpus --runs .smalltts/train/demo \
        --model model/demo --state training/demo_state

Run by `make demo-export` after `smalltts export` has written the model folder. Everything it writes is small
enough to commit:

    MODEL/reference.wav            the default voice of `smalltts say` (a held-out voice, never trained on)
    STATE/asr.pt                   the evaluation ASR, used by the shipped-model check in `make test`
    STATE/samples/demo_*.wav       per held-out voice: the reference, the espeak-ng original, the generated clip
    STATE/loss_teacher.png         the teacher's loss curve (also loss_asr.png)
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REFERENCE_NAME = "reference.wav"
ASR_NAME = "asr.pt"


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _clips_by_voice(corpus_dir: Path) -> dict[str, list[dict[str, Any]]]:
    voices: dict[str, list[dict[str, Any]]] = {}
    for row in _read(corpus_dir / "heldout_voices.jsonl"):
        voices.setdefault(row["speaker"], []).append(row)
    return voices


def write_samples(corpus_dir: Path, model_dir: Path, out_dir: Path, num_voices: int, seed: int) -> list[Path]:
    """For each of the first held-out voices: its first clip is the reference; the model speaks its second text."""
    from model.runtime.audio import read_reference, write_audio
    from model.runtime.synthesizer import SynthesisRequest, Synthesizer
    from model.text import estimate_duration_s, tokenize

    synthesizer = Synthesizer.load(model_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for speaker, clips in list(_clips_by_voice(corpus_dir).items())[:num_voices]:
        reference, target = clips[0], clips[1]
        tokens = tokenize(target["text"])
        ref_audio = read_reference(corpus_dir / reference["audio"], synthesizer.sample_rate_hz)
        request = SynthesisRequest(
            token_ids=tuple(tokens.ids),
            ref_latents=synthesizer.encode_reference(ref_audio),
            duration_s=estimate_duration_s(tokens),
            seed=seed,
        )
        (result,) = synthesizer.synthesize_batch([request])
        stem = out_dir / f"demo_{speaker}"
        written.append(write_audio(f"{stem}_reference.wav", ref_audio, synthesizer.sample_rate_hz))
        original = read_reference(corpus_dir / target["audio"], synthesizer.sample_rate_hz)
        written.append(write_audio(f"{stem}_original.wav", original, synthesizer.sample_rate_hz))
        written.append(write_audio(f"{stem}_generated.wav", result.audio, synthesizer.sample_rate_hz))
        (out_dir / f"demo_{speaker}.txt").write_text(target["text"] + "\n")
    return written


def ship(corpus_dir: Path, runs_dir: Path, model_dir: Path, state_dir: Path, num_samples: int, seed: int) -> None:
    from training.loop import resolve_checkpoint_dir
    from training.metrics import plot_loss_curves

    first_voice = next(iter(_clips_by_voice(corpus_dir).values()))
    shutil.copyfile(corpus_dir / first_voice[0]["audio"], model_dir / REFERENCE_NAME)
    shutil.copyfile(resolve_checkpoint_dir(runs_dir / "asr") / ASR_NAME, state_dir / ASR_NAME)
    write_samples(corpus_dir, model_dir, state_dir / "samples", num_samples, seed)
    for run in ("teacher", "asr"):
        plot_loss_curves(runs_dir / run / "metrics.jsonl", state_dir / f"loss_{run}.png", title=f"demo {run}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="the demo corpus (after training.demo_corpus)")
    parser.add_argument("--runs", type=Path, required=True, help="the folder holding the teacher/ and asr/ runs")
    parser.add_argument("--model", type=Path, required=True, help="the exported demo model folder")
    parser.add_argument("--state", type=Path, required=True, help="training/demo_state")
    parser.add_argument("--samples", type=int, default=3, help="held-out voices to write samples for")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    ship(args.corpus, args.runs, args.model, args.state, args.samples, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Ships a trained demo model: its default reference voice, the evaluation ASR, the compact teacher state,
listening samples, loss curves.

    python -m training.demo_ship --corpus .smalltts/train/demo/corpus --runs .smalltts/train/demo \
        --model model/demo --state training/demo_state
    python -m training.demo_ship --restore-teacher training/demo_state/teacher_ema.fp16.pt --out DIR/teacher_ema.pt

Run by `make demo-export` after `smalltts export` has written the model folder. Everything it writes is small
enough to commit, and each file replaces the one before (no snapshots pile up):

    MODEL/reference.wav            the default voice of `smalltts say` (a held-out voice, never trained on)
    STATE/asr.pt                   the evaluation ASR, fp16 weights (runs/asr_eval: its own seed and clips, never a
                                   training loss), used by `smalltts eval --pairs` and the shipped-model check in
                                   `make test`
    STATE/teacher_ema.fp16.pt      the teacher's EMA weights in fp16 (+ .json sidecar): what a fresh machine needs to
                                   distil again (`make demo-restore`); 13 MB instead of the 104 MB training state
    STATE/samples/demo_*.wav       per held-out voice: the reference, the espeak-ng original, the generated clip
    STATE/loss_*.png               loss curves of every run (teacher, asr, asr_eval, sv, distill)
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
TEACHER_STATE_NAME = "teacher_ema.fp16.pt"
RUNS = ("teacher", "asr", "asr_eval", "sv", "distill")


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


def half_floats(weights: dict[str, Any]) -> dict[str, Any]:
    """Floating tensors in fp16 (half the bytes in git); load_state_dict casts them back into fp32 modules."""
    return {name: value.half() if value.is_floating_point() else value for name, value in weights.items()}


def save_asr_state(asr: Path, out: Path) -> Path:
    """The evaluation ASR with fp16 weights: on the 50 everyday sentences it decodes exactly what fp32 decodes."""
    import torch

    payload = torch.load(asr, map_location="cpu", weights_only=False)
    torch.save({**payload, "model": half_floats(payload["model"])}, out)
    return out


def save_teacher_state(teacher: Path, out: Path) -> Path:
    """The teacher's weights in fp16 with their sidecar (for `make demo-restore`)."""
    import torch

    payload = torch.load(teacher, map_location="cpu", weights_only=True)
    torch.save({"model": half_floats(payload["model"])}, out)
    shutil.copyfile(teacher.with_suffix(".json"), out.with_suffix(".json"))
    return out


def restore_teacher(state: Path, out: Path) -> Path:
    """The fp16 state back as an fp32 checkpoint that `--teacher` / `--init` take."""
    import torch

    payload = torch.load(state, map_location="cpu", weights_only=True)
    weights = {name: value.float() if value.is_floating_point() else value for name, value in payload["model"].items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": weights}, out)
    shutil.copyfile(state.with_suffix(".json"), out.with_suffix(".json"))
    return out


def ship(corpus_dir: Path, runs_dir: Path, model_dir: Path, state_dir: Path, num_samples: int, seed: int) -> None:
    from training.loop import resolve_checkpoint_dir
    from training.metrics import plot_loss_curves

    first_voice = next(iter(_clips_by_voice(corpus_dir).values()))
    shutil.copyfile(corpus_dir / first_voice[0]["audio"], model_dir / REFERENCE_NAME)
    save_asr_state(resolve_checkpoint_dir(runs_dir / "asr_eval") / ASR_NAME, state_dir / ASR_NAME)
    save_teacher_state(runs_dir / "teacher_ema.pt", state_dir / TEACHER_STATE_NAME)
    write_samples(corpus_dir, model_dir, state_dir / "samples", num_samples, seed)
    for run in RUNS:
        if (runs_dir / run / "metrics.jsonl").is_file():
            plot_loss_curves(runs_dir / run / "metrics.jsonl", state_dir / f"loss_{run}.png", title=f"demo {run}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="the demo corpus (after training.demo_corpus)")
    parser.add_argument("--runs", type=Path, help="the folder holding the runs and teacher_ema.pt")
    parser.add_argument("--model", type=Path, help="the exported demo model folder")
    parser.add_argument("--state", type=Path, help="training/demo_state")
    parser.add_argument("--samples", type=int, default=3, help="held-out voices to write samples for")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--restore-teacher", type=Path, metavar="STATE", help="only restore this fp16 teacher state")
    parser.add_argument("--out", type=Path, help="with --restore-teacher: the fp32 checkpoint to write")
    args = parser.parse_args(argv)
    if args.restore_teacher is not None:
        if args.out is None:
            parser.error("--restore-teacher needs --out")
        print(f"restored {restore_teacher(args.restore_teacher, args.out)}")
        return 0
    if None in (args.corpus, args.runs, args.model, args.state):
        parser.error("--corpus, --runs, --model and --state are required")
    ship(args.corpus, args.runs, args.model, args.state, args.samples, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

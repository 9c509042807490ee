"""The demo model's evidence on everyday English: espeak-ng originals, the teacher (its own sampler) and the 4-step
student speak the committed 50 everyday sentences (training/everyday_sentences.txt, from neither corpus source)
in the held-out voices; the evaluation ASR scores them (`smalltts eval --pairs`) and the same run times both
models side by side.

    python -m training.demo_report --corpus .smalltts/train/demo/corpus \
        --teacher-model .smalltts/train/demo/teacher_model --student-model model/demo \
        --out model/demo/eval/everyday.json --audio-dir .smalltts/train/demo/everyday

For sentence i, voice i mod V of the held-out voices speaks it: its first clip is the reference, and espeak-ng with
that voice's settings gives the original. Real-time factor = audio seconds / wall seconds of `synthesize_batch`
(one request at a time, the same requests for both models, interleaved so machine noise hits both alike).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.sentences import everyday_sentences


def _heldout_voices(corpus_dir: Path) -> dict[str, list[dict[str, Any]]]:
    voices: dict[str, list[dict[str, Any]]] = {}
    for line in (corpus_dir / "heldout_voices.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            voices.setdefault(row["speaker"], []).append(row)
    return voices


def _speaker_settings(name: str, num_speakers: int, seed: int) -> Any:
    from training.config import SynthCorpusConfig
    from training.corpus import choose_speakers

    for speaker in choose_speakers(SynthCorpusConfig(num_speakers=num_speakers, seed=seed)):
        if speaker.name == name:
            return speaker
    raise ValueError(f"voice {name} is not among the corpus's {num_speakers} voices (seed {seed})")


def write_originals(corpus_dir: Path, out_dir: Path, num_speakers: int, seed: int) -> list[dict[str, Any]]:
    """espeak-ng speaks each everyday sentence in its held-out voice; returns pairs rows (audio, text, ref)."""
    from model.text.normalize import normalize_text
    from training.corpus import speak

    voices = list(_heldout_voices(corpus_dir).items())
    rows = []
    for i, text in enumerate(everyday_sentences()):
        name, clips = voices[i % len(voices)]
        speaker = _speaker_settings(name, num_speakers, seed)
        path = out_dir / "original" / f"{i:02d}.wav"
        speak(normalize_text(text), speaker.voice, speaker.speed_wpm, speaker.pitch, path)
        rows.append({"audio": str(path), "text": text, "ref": str(corpus_dir / clips[0]["audio"])})
    return rows


def synthesize_systems(
    models: dict[str, Path], originals: list[dict[str, Any]], out_dir: Path, seed: int
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, float]]]:
    """Each model speaks every sentence (one request at a time, models interleaved); returns pairs rows and timing."""
    from model.runtime.audio import read_reference, write_audio
    from model.runtime.synthesizer import SynthesisRequest, Synthesizer
    from model.text import estimate_duration_s, tokenize

    synths = {name: Synthesizer.load(path, providers=["CPUExecutionProvider"]) for name, path in models.items()}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in models}
    wall = dict.fromkeys(models, 0.0)
    audio_s = dict.fromkeys(models, 0.0)
    for i, original in enumerate(originals):
        tokens = tokenize(original["text"])
        for name, synth in synths.items():
            ref = synth.encode_reference(read_reference(original["ref"], synth.sample_rate_hz))
            request = SynthesisRequest(
                token_ids=tuple(tokens.ids), ref_latents=ref, duration_s=estimate_duration_s(tokens), seed=seed + i
            )
            if i == 0:
                synth.synthesize_batch([request])  # warm-up, not timed
            start = time.perf_counter()
            (result,) = synth.synthesize_batch([request])
            wall[name] += time.perf_counter() - start
            audio_s[name] += result.duration_s
            path = write_audio(out_dir / name / f"{i:02d}.wav", result.audio, synth.sample_rate_hz)
            rows[name].append({"audio": str(path), "text": original["text"], "ref": original["ref"]})
    timing = {}
    for name, synth in synths.items():
        info = synth.summary()
        passes = (2 if info["guidance_scale"] != 1.0 else 1) * int(info["default_steps"])
        timing[name] = {
            "sampler": info["sampler"],
            "steps": int(info["default_steps"]),
            "guidance_scale": float(info["guidance_scale"]),
            "denoiser_passes_per_request": passes,
            "real_time_factor": audio_s[name] / wall[name],  # seconds of audio per second of compute
            "wall_s": wall[name],
            "audio_s": audio_s[name],
        }
    return rows, timing


def report(
    corpus_dir: Path,
    models: dict[str, Path],
    audio_dir: Path,
    *,
    asr: Path,
    num_speakers: int,
    seed: int,
) -> dict[str, Any]:
    from training.evaluation import PairRow, score_pairs

    originals = write_originals(corpus_dir, audio_dir, num_speakers, seed)
    generated, timing = synthesize_systems(models, originals, audio_dir, seed)
    scoring_model = next(iter(models.values()))
    systems = {"espeak-ng original": originals, **generated}
    results: dict[str, Any] = {}
    for name, rows in systems.items():
        pairs = [PairRow(i + 1, Path(r["audio"]), r["text"], Path(r["ref"])) for i, r in enumerate(rows)]
        scored = score_pairs(pairs, model_dir=scoring_model, asr=asr)
        results[name] = {
            "mean_per": scored["mean_per"],
            "corpus_per": scored["corpus_per"],
            "mean_similarity": scored["mean_similarity"],
            **timing.get(name, {}),
        }
    return {
        "sentences": len(originals),
        "voices": len(_heldout_voices(corpus_dir)),
        "machine": f"{_cpu_name()} ({platform.machine()}, {os.cpu_count()} cores)",
        "systems": results,
    }


def _cpu_name() -> str:
    from training.precision import cpu_facts

    return str(cpu_facts()["cpu"])


def main(argv: Sequence[str] | None = None) -> int:
    from training.evaluation import DEFAULT_EVAL_ASR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="the demo corpus (after training.demo_corpus)")
    parser.add_argument("--teacher-model", type=Path, required=True, help="the exported teacher folder")
    parser.add_argument("--student-model", type=Path, required=True, help="the exported student folder")
    parser.add_argument("--audio-dir", type=Path, required=True, help="where the spoken sentences are written")
    parser.add_argument("--out", type=Path, required=True, help="the JSON report")
    parser.add_argument("--asr", type=Path, default=DEFAULT_EVAL_ASR, help="the evaluation ASR")
    parser.add_argument("--speakers", type=int, default=104, help="the corpus's --speakers (to find voice settings)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    models = {"student": args.student_model, "teacher": args.teacher_model}
    result = report(args.corpus, models, args.audio_dir, asr=args.asr, num_speakers=args.speakers, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'system':<20} {'PER':>6} {'sim':>6} {'passes':>6} {'RTF':>7}")
    for name, row in result["systems"].items():
        sim = f"{row['mean_similarity']:.3f}" if row["mean_similarity"] is not None else "n/a"
        rtf = f"{row['real_time_factor']:.1f}x" if "real_time_factor" in row else ""
        passes = row.get("denoiser_passes_per_request", "")
        print(f"{name:<20} {row['corpus_per']:>6.3f} {sim:>6} {passes!s:>6} {rtf:>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

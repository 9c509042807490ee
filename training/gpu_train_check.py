"""A prepared training check for one GPU: steps/s, frames/s and peak memory of the real trainers, as JSON.

    make gpu-train-check                        # = PYTHONPATH=. python3 -m training.gpu_train_check
    python -m training.gpu_train_check --device cpu --preset tiny --quick   # CPU smoke test (make test runs it)

It runs what a bare GPU machine has (Python 3.12, torch with CUDA, accelerate, numpy): no espeak-ng, no codec,
no download, no `pip install -e`. It writes a synthetic dataset of realistic lengths (random latents of 3-20 s
clips at 7.5 frames/s, random phoneme ids at ~14 per second, 32 speakers) in the shard format, then runs the
real `train_teacher` for each preset (bf16, without and with --compile) and one `train_distill` step from the
last teacher, and reads their logged step time, frames/s and peak memory. The first log window holds warm-up
(and compilation), the second is the measurement. A time budget (default 420 s, the check must finish within 8
minutes on an H100/H200) skips what would not fit; skipped runs are listed as such.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

FRAME_RATE_HZ = 7.5
PHONEMES_PER_S = 14.0


def write_synthetic_dataset(
    out_dir: str | Path,
    num_clips: int,
    *,
    min_s: float = 3.0,
    max_s: float = 20.0,
    num_speakers: int = 32,
    latent_dim: int = 64,
    clips_per_shard: int = 256,
    seed: int = 0,
) -> Path:
    """A dataset folder in `smalltts dataset build`'s shard format, of random latents and phoneme ids."""
    import tarfile

    from model.text.vocab import VOCAB_SIZE

    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    (out_dir / "shards").mkdir(parents=True, exist_ok=True)
    shards = []
    for first in range(0, num_clips, clips_per_shard):
        name = f"shards/shard-{len(shards):06d}.tar"
        with tarfile.open(out_dir / name, "w") as tar:
            for i in range(first, min(first + clips_per_shard, num_clips)):
                duration_s = float(rng.uniform(min_s, max_s))
                n = max(2, round(duration_s * FRAME_RATE_HZ))
                p = max(2, round(duration_s * PHONEMES_PER_S))
                members: dict[str, bytes] = {}
                for field, array in (
                    ("latents.npy", rng.standard_normal((n, latent_dim), dtype=np.float32)),  # (n c)
                    ("phonemes.npy", rng.integers(1, VOCAB_SIZE, size=p, dtype=np.int16)),  # (p,)
                ):
                    buffer = io.BytesIO()
                    np.save(buffer, array)
                    members[field] = buffer.getvalue()
                members["json"] = json.dumps({"speaker": f"spk{i % num_speakers:03d}", "text": "synthetic"}).encode()
                for field, data in members.items():
                    info = tarfile.TarInfo(f"clip{i:08d}.{field}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        shards.append(name)
    index = {"format": "smalltts-dataset/1", "shards": shards, "num_samples": num_clips, "synthetic": True}
    (out_dir / "index.json").write_text(json.dumps(index))
    return out_dir


def measured(run_dir: Path) -> dict[str, float]:
    """Speed over every logged window but the first (which holds warm-up and compilation); peak memory and the
    last losses from the last row."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    windows = list(zip([row["step"] for row in [{"step": -1}, *rows[:-1]]], rows, strict=True))[1:] or [(-1, rows[0])]
    steps = sum(row["step"] - before for before, row in windows)
    seconds = sum((row["step"] - before) * row["step_time_s"] for before, row in windows)
    out = {"steps_per_s": steps / seconds, "step_time_s": seconds / steps}
    if all("frames_per_s" in row for _, row in windows):
        out["frames_per_s"] = (
            sum(row["frames_per_s"] * (row["step"] - before) * row["step_time_s"] for before, row in windows) / seconds
        )
    last = rows[-1]
    for key in ("peak_gpu_mem_gb", "peak_rss_gb", "loss", "student_loss"):
        if key in last:
            out[key] = float(last[key])
    return out


def environment(device: str) -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "cpu": platform.processor() or platform.machine(),
    }
    if device == "cuda":
        facts.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda)
    return facts


def run_check(
    out: Path,
    *,
    device: str,
    presets: Sequence[str],
    quick: bool,
    compile_modes: Sequence[bool],
    warmup_steps: int,
    measure_steps: int,
    budget_s: float,
    distill: bool,
    work_dir: Path,
) -> dict[str, Any]:
    import torch

    from training.config import distill_config_for, teacher_config_for
    from training.distill import train_distill
    from training.precision import resolve_precision
    from training.teacher import TEACHER_EMA_WEIGHTS, train_teacher

    started = time.perf_counter()
    cpu = device == "cpu"
    precision = "bf16" if not cpu else "auto"
    data = write_synthetic_dataset(work_dir / "data", 64 if quick else 2048, max_s=8.0 if quick else 20.0)
    results: list[dict[str, Any]] = []
    last_teacher: Path | None = None
    last_preset = ""

    def reset_accelerate() -> None:
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    for preset in presets:
        for compiled in compile_modes:
            entry: dict[str, Any] = {"trainer": "teacher", "preset": preset, "compile": compiled}
            if time.perf_counter() - started > budget_s:
                results.append({**entry, "skipped": "time budget"})
                continue
            cfg = teacher_config_for(
                preset, steps=warmup_steps + measure_steps, log_every=warmup_steps if measure_steps else 1,
                checkpoint_every=0, precision=precision, compile=compiled, warmup_steps=1,
            )  # fmt: skip
            entry.update(
                precision=resolve_precision(cfg.run.precision, cpu=cpu), batch_clips=cfg.loader.max_batch_size,
                batch_frames=cfg.loader.max_frames_per_batch, measured_steps=measure_steps,
            )  # fmt: skip
            run_dir = work_dir / f"teacher_{preset}_{'compiled' if compiled else 'eager'}"
            reset_accelerate()
            t0 = time.perf_counter()
            try:
                train_teacher(cfg, data, run_dir, cpu=cpu)
            except Exception as exc:  # a failed configuration (out of memory, compile) is a result: record, go on
                results.append({**entry, "error": f"{type(exc).__name__}: {exc}"[:2000]})
                _print(results[-1])
                continue
            results.append({**entry, **measured(run_dir), "wall_s": round(time.perf_counter() - t0, 1)})
            if last_teacher is not None:  # a full teacher's checkpoint is GBs: keep only the one distillation reads
                shutil.rmtree(last_teacher, ignore_errors=True)
            last_teacher, last_preset = run_dir, preset
            _print(results[-1])
    if distill and last_teacher is not None:
        entry = {"trainer": "distill", "preset": last_preset, "compile": False}
        if time.perf_counter() - started > budget_s:
            results.append({**entry, "skipped": "time budget"})
        else:
            # Two steps logged one by one: the first warms up, the second is the one DMD2 step measured.
            cfg = distill_config_for(
                entry["preset"], steps=2, log_every=1, checkpoint_every=0, precision=precision, scorer_updates=1,
            )  # fmt: skip
            run_dir = work_dir / "distill"
            reset_accelerate()
            t0 = time.perf_counter()
            teacher_weights = sorted((last_teacher / "checkpoints").glob(f"step_*/{TEACHER_EMA_WEIGHTS}"))[-1]
            entry["precision"] = resolve_precision(cfg.run.precision, cpu=cpu)
            try:
                train_distill(cfg, data, run_dir, teacher=teacher_weights, cpu=cpu)
            except Exception as exc:  # as above: recorded, and the report is still written
                results.append({**entry, "error": f"{type(exc).__name__}: {exc}"[:2000]})
            else:
                results.append({**entry, **measured(run_dir), "wall_s": round(time.perf_counter() - t0, 1)})
            _print(results[-1])
    report = {
        "check": "gpu-train-check",
        "environment": environment(device),
        "quick": quick,
        "data": "synthetic: 3-20 s clips, 7.5 latent frames/s, 14 phoneme ids/s, 32 speakers",
        "results": results,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _print(row: dict[str, Any]) -> None:
    print(json.dumps(row), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--preset", nargs="+", default=None, help="teacher presets (default: small full)")
    parser.add_argument("--quick", action="store_true", help="a few steps on a small dataset (smoke test)")
    parser.add_argument(
        "--compile", choices=("both", "on", "off"), default=None, help="default: both on cuda, off on cpu"
    )
    parser.add_argument("--warmup-steps", type=int, default=None, help="steps of the first (warm-up) window")
    parser.add_argument("--steps", type=int, default=None, help="measured steps")
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip what would start after this many seconds")
    parser.add_argument("--no-distill", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench/gpu_train_check.json"))
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs in this folder (default: a temp dir)")
    args = parser.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu-train-check: no CUDA device; use --device cpu --preset tiny --quick for the CPU smoke test",
              file=sys.stderr)  # fmt: skip
        return 2
    presets = args.preset or (["tiny"] if args.device == "cpu" else ["small", "full"])
    compile_mode = args.compile or ("both" if args.device == "cuda" else "off")
    compile_modes = {"both": [False, True], "on": [True], "off": [False]}[compile_mode]
    warmup = args.warmup_steps if args.warmup_steps is not None else (1 if args.quick else 5)
    steps = args.steps if args.steps is not None else (2 if args.quick else 20)
    work = args.keep or Path(tempfile.mkdtemp(prefix="gpu_train_check_"))
    try:
        run_check(
            args.out, device=args.device, presets=presets, quick=args.quick, compile_modes=compile_modes,
            warmup_steps=warmup, measure_steps=steps, budget_s=args.budget_s, distill=not args.no_distill,
            work_dir=work,
        )  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"gpu-train-check: wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`smalltts bench`: per-stage runtime cost, batched calls against the same requests one by one.

    smalltts bench --out bench/runtime.json                      # full preset, random weights (make bench)
    smalltts bench --model /tmp/smalltts-tiny --durations 2 --batches 1,2 --out /tmp/bench.json   # smoke test

For each duration and batch size it times one `synthesize_batch` call over `batch` requests (distinct voices,
so no cache helps) and then the same requests one call each: reference encode (codec encoder), condition
encoder, every denoiser step and decode, in milliseconds. The weights do not change the cost, so the random
full-preset model (exported once into .smalltts/models/random-full, needs torch) measures the real one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from model.runtime.assets import AssetError, ensure_random_model, require_model_dir
from model.runtime.synthesizer import StageTimings, SynthesisRequest, SynthesisResult, Synthesizer
from smalltts.cli.main import CliError

TOKENS_PER_S = 14  # espeak-ng phoneme tokens per second of speech (incl. spaces and stress marks), roughly
REFERENCE_S = 5.0


@dataclass
class BenchRow:
    duration_s: float
    batch: int
    mode: str  # "batched" | "one_by_one"
    ref_encode_ms: float
    condition_ms: float
    denoise_step_ms: list[float]
    decode_ms: float
    total_ms: float  # reference encode + synthesis, wall time
    total_cpu_ms: float  # CPU time of this process over the same span, all threads (contention shows as wall >> cpu)
    audio_s: float  # seconds of audio produced by the whole batch
    max_abs_diff: float | None = None  # batched vs one by one, same requests
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def realtime_factor(self) -> float:
        return self.audio_s / (self.total_ms / 1000.0)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("bench", help="time every runtime stage, batched vs one by one")
    parser.add_argument("--model", type=Path, default=None, metavar="DIR", help="default: random full preset")
    parser.add_argument("--durations", default="2,5,10", help="seconds of audio per request (default 2,5,10)")
    parser.add_argument("--batches", default="1,2,4,8", help="batch sizes (default 1,2,4,8)")
    parser.add_argument(
        "--steps", type=int, default=None, metavar="N", help="denoiser steps (default: the model's own; 4 published)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="keep the fastest of N runs (default 2)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    parser.add_argument("--out", type=Path, default=Path("bench/runtime.json"), metavar="FILE")
    parser.set_defaults(handler=run)


def _numbers(text: str, kind: type[float] | type[int]) -> list[Any]:
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CliError(f"expected a comma-separated list of numbers, got {text!r}") from None
    if not values or any(value <= 0 for value in values):
        raise CliError(f"expected positive numbers, got {text!r}")
    return values


def describe_machine(threads: int) -> dict[str, Any]:
    """CPU model and core counts, for the table header and the JSON."""
    cpu = platform.processor() or platform.machine()
    physical: set[tuple[str, str]] = set()
    current: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines() + [""]:
            if not line.strip():
                if "core id" in current:
                    physical.add((current.get("physical id", "0"), current["core id"]))
                current = {}
                continue
            key, _, value = line.partition(":")
            current[key.strip()] = value.strip()
            if key.strip() == "model name":
                cpu = value.strip()
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "physical_cores": len(physical) or None,
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "intra_op_threads": threads or "default",
        # Other work on the machine slows every stage; the load says how quiet it was.
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def run(args: argparse.Namespace) -> int:
    durations = _numbers(args.durations, float)
    batches = _numbers(args.batches, int)
    try:
        model_dir = require_model_dir(args.model) if args.model is not None else ensure_random_model("full")
    except AssetError as exc:
        raise CliError(str(exc)) from None
    # No caches: every request is a new voice, so the condition encoder and the codec encoder always run.
    synthesizer = Synthesizer.load(model_dir, intra_op_threads=args.threads, cache_mb=0)
    machine = describe_machine(args.threads)
    summary = synthesizer.summary()
    steps: int = args.steps if args.steps is not None else synthesizer.default_steps
    out = sys.stdout
    out.write(
        f"machine: {machine['cpu']}, {machine['usable_cores']} usable cores "
        f"({machine['physical_cores']} physical), onnxruntime {machine['onnxruntime']} "
        f"{', '.join(summary['providers'])}, intra-op threads {machine['intra_op_threads']}, "
        f"load average {machine['load_average_1m']}\n"
        f"model: {summary['model_id']} (preset {summary['preset']}, {summary['num_parameters']:,} parameters, "
        f"{'trained' if summary['trained'] else 'random weights'}), batch > 1: {summary['accepts_batch']}\n"
        f"requests: {REFERENCE_S:g} s reference (a new voice each), {TOKENS_PER_S} tokens per second of audio, "
        f"{steps} {synthesizer.sampler} steps; best of {args.repeats}\n\n"
    )
    rng = np.random.default_rng(0)
    voices = [
        (0.1 * rng.standard_normal(int(REFERENCE_S * synthesizer.sample_rate_hz))).astype(np.float32)
        for _ in range(max(batches))
    ]
    # Warm-up: ONNX Runtime plans its memory on the first calls.
    _measure(synthesizer, voices[:1], durations[0], steps, one_by_one=False)

    rows: list[BenchRow] = []
    started = time.perf_counter()
    out.write(_header(steps))
    for duration_s in durations:
        for batch in batches:
            batched, batched_audio = _best(synthesizer, voices[:batch], duration_s, steps, False, args.repeats)
            single, single_audio = _best(synthesizer, voices[:batch], duration_s, steps, True, args.repeats)
            batched.max_abs_diff = max(
                float(np.abs(a.audio - b.audio).max()) for a, b in zip(batched_audio, single_audio, strict=True)
            )
            batched.extra["speedup_vs_one_by_one"] = single.total_ms / batched.total_ms
            for row in (batched, single):
                rows.append(row)
                out.write(_format_row(row))
                out.flush()
    machine["load_average_1m_at_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    out.write(f"\n{len(rows)} measurements in {time.perf_counter() - started:.0f} s\n")
    report = {
        "machine": machine,
        "model": summary,
        "settings": {
            "reference_s": REFERENCE_S,
            "tokens_per_s": TOKENS_PER_S,
            "steps": steps,
            "sampler": synthesizer.sampler,
            "repeats": args.repeats,
            "durations_s": durations,
            "batches": batches,
        },
        "rows": [asdict(row) | {"realtime_factor": row.realtime_factor} for row in rows],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    out.write(f"wrote {args.out}\n")
    return 0


def _best(
    synthesizer: Synthesizer, voices: list[np.ndarray], duration_s: float, steps: int, one_by_one: bool, repeats: int
) -> tuple[BenchRow, list[SynthesisResult]]:
    runs = [_measure(synthesizer, voices, duration_s, steps, one_by_one=one_by_one) for _ in range(max(1, repeats))]
    return min(runs, key=lambda run: run[0].total_ms)


def _measure(
    synthesizer: Synthesizer, voices: list[np.ndarray], duration_s: float, steps: int, *, one_by_one: bool
) -> tuple[BenchRow, list[SynthesisResult]]:
    num_tokens = max(1, round(duration_s * TOKENS_PER_S))
    token_ids = tuple(int(i) for i in np.random.default_rng(1).integers(1, 175, num_tokens))
    timings = StageTimings()
    started = time.perf_counter()
    cpu_started = time.process_time()
    ref_started = time.perf_counter()
    latents = [synthesizer.encode_reference(voice) for voice in voices]  # one clip per call in both modes
    ref_encode_ms = (time.perf_counter() - ref_started) * 1000.0
    requests = [
        SynthesisRequest(token_ids=token_ids, ref_latents=ref, duration_s=duration_s, seed=i, num_steps=steps)
        for i, ref in enumerate(latents)
    ]
    if one_by_one:
        results = [synthesizer.synthesize_batch([request], timings)[0] for request in requests]
    else:
        results = synthesizer.synthesize_batch(requests, timings)
    total_ms = (time.perf_counter() - started) * 1000.0
    total_cpu_ms = (time.process_time() - cpu_started) * 1000.0
    row = BenchRow(
        duration_s=duration_s,
        batch=len(voices),
        mode="one_by_one" if one_by_one else "batched",
        ref_encode_ms=ref_encode_ms,
        condition_ms=timings.condition_ms,
        denoise_step_ms=list(timings.denoise_step_ms),
        decode_ms=timings.decode_ms,
        total_ms=total_ms,
        total_cpu_ms=total_cpu_ms,
        audio_s=sum(result.duration_s for result in results),
    )
    return row, results


# The table has room for four step columns; a many-step (DDIM) model's later steps are summed into the fourth.
STEP_COLUMNS = 4


def _step_columns(step_ms: list[float]) -> list[float]:
    return [*step_ms[: STEP_COLUMNS - 1], sum(step_ms[STEP_COLUMNS - 1 :])] if len(step_ms) > STEP_COLUMNS else step_ms


def _header(num_steps: int) -> str:
    names = [f"step {i + 1}" for i in range(STEP_COLUMNS)]
    if num_steps > STEP_COLUMNS:
        names[-1] = f"step {STEP_COLUMNS}-{num_steps}"  # 9 characters up to 99 steps
    steps = "".join(f"{name:>9}" for name in names)
    return (
        f"{'dur s':>5} {'batch':>5} {'mode':<10}{'ref enc':>9}{'cond':>9}{steps}{'decode':>9}{'total':>10}"
        f"{'cpu ms':>10}{'ms/item':>9}{'x rt':>7}{'speedup':>8}\n"
    )


def _format_row(row: BenchRow) -> str:
    steps = "".join(f"{value:9.1f}" for value in _step_columns(row.denoise_step_ms)).ljust(9 * STEP_COLUMNS)
    speedup = row.extra.get("speedup_vs_one_by_one")
    return (
        f"{row.duration_s:5g} {row.batch:5d} {row.mode:<10}{row.ref_encode_ms:9.1f}{row.condition_ms:9.1f}{steps}"
        f"{row.decode_ms:9.1f}{row.total_ms:10.1f}{row.total_cpu_ms:10.1f}{row.total_ms / row.batch:9.1f}"
        f"{row.realtime_factor:7.2f}"
        f"{f'{speedup:.2f}x' if speedup else '':>8}\n"
    )

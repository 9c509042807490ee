"""`smalltts bench`: end-to-end and per-stage runtime cost on requests that do not flatter, models side by side.

    smalltts bench --precision fp32,int8 --out bench/runtime.json              # full preset, random weights
    smalltts bench --models /tmp/a /tmp/b --lengths 1-2 --batches 1,2 --repeats 2 --out /tmp/b.json  # any folders
    smalltts bench --model /tmp/smalltts-tiny --lengths 1-2 --batches 1,2 --repeats 2 --out /tmp/bench.json  # smoke

Every request is drawn afresh: its duration uniformly from its length bucket (`--lengths 1.5-2.5,4-6,8-12`), its
text as many phoneme tokens as that duration takes (+-20 %), and its own voice (a new reference clip of 3-8 s),
so a batch pads to its longest item, the decoder runs once per distinct length and no cache ever hits. For each
bucket and batch size, every model first runs one untimed batch at the bucket's largest shapes (warm-up per
shape bucket), then `--repeats` timed batches; the models take turns on the same requests, in alternating
order, so a drift in the machine's load hits them alike. Reported per cell: the median and p90/p99 of the
end-to-end time (conditions, every denoiser step and decode: one `synthesize_batch`), the reference encode
before it, and the median of each stage. An ONNX Runtime call returns only once its execution provider has
finished (ORT synchronises the provider at the end of each run), so each stage's time includes the device's
work: the synchronisation a GPU timing needs.

`--precision fp32,int8` compares the model with its int8 copy (made once, next to it, by `smalltts optimize`'s
function); on a GPU with onnxruntime-gpu, `--precision fp32,fp16,trt` compares fp32 and fp16 on CUDA with the
fp32 folder on TensorRT. `--models A B` compares any folders. The first model is the baseline of the speedups.
Results: a table on stdout, JSON at --out and a PNG chart beside it (matplotlib; skipped with a note when it is
missing).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from model.runtime.assets import AssetError, ensure_random_model, require_model_dir
from model.runtime.graph import CPU_PROVIDER, CUDA_PROVIDER, TENSORRT_PROVIDER
from model.runtime.synthesizer import StageTimings, SynthesisRequest, SynthesisResult, Synthesizer
from smalltts.cli.bench_report import (
    BarGroup,
    ChartPanel,
    describe_machine,
    load_average,
    summarize,
    write_bar_chart,
)
from smalltts.cli.main import CliError

TOKENS_PER_S = 14  # espeak-ng phoneme tokens per second of speech (incl. spaces and stress marks), roughly
REFERENCE_RANGE_S = (3.0, 8.0)  # each request's own voice: a reference clip this long
DEFAULT_LENGTHS = "1.5-2.5,4-6,8-12"
# trt: the fp32 folder on ONNX Runtime's TensorRT provider (which builds fp16 engines); the others run on CUDA
# where this onnxruntime has it (TensorRT left out, so the comparison is fair), else on the CPU.
PRECISIONS = ("fp32", "int8", "fp16", "trt")


@dataclass(frozen=True)
class LengthBucket:
    low_s: float
    high_s: float

    @property
    def label(self) -> str:
        return f"{self.low_s:g}-{self.high_s:g} s"


@dataclass(frozen=True)
class Variant:
    """One model folder under comparison."""

    label: str
    model_dir: Path
    made_by: str | None = None  # how a precision copy was made
    providers: list[str] | None = None  # None: the runtime's own choice


@dataclass(frozen=True)
class DrawnRequest:
    """One request as drawn: its voice (reference audio), text (token ids), duration and seed."""

    reference: np.ndarray  # (n,) float32 at the codec rate
    token_ids: tuple[int, ...]
    duration_s: float
    seed: int


@dataclass
class Measurement:
    """One timed batch of one model."""

    ref_encode_ms: float
    synth_ms: float  # conditions + denoiser steps + decode: one synthesize_batch call
    condition_ms: float
    denoise_step_ms: list[float]
    decode_ms: float
    audio_s: float
    audio: list[np.ndarray] = field(repr=False)


@dataclass
class Cell:
    """All measurements of one model at one (bucket, batch)."""

    variant: str
    bucket: LengthBucket
    batch: int
    runs: list[Measurement] = field(default_factory=list)
    audio_rms_diff: list[float] = field(default_factory=list)  # vs the baseline model on the same requests

    def report(self) -> dict[str, Any]:
        synth = summarize([run.synth_ms for run in self.runs])
        steps = max((len(run.denoise_step_ms) for run in self.runs), default=0)
        audio_s = float(np.median([run.audio_s for run in self.runs])) if self.runs else 0.0
        return {
            "variant": self.variant,
            "lengths_s": [self.bucket.low_s, self.bucket.high_s],
            "batch": self.batch,
            "repeats": len(self.runs),
            "synth_ms": synth.as_dict(),  # end to end: conditions, steps, decode
            "ref_encode_ms": summarize([run.ref_encode_ms for run in self.runs]).as_dict(),
            "total_ms": summarize([run.ref_encode_ms + run.synth_ms for run in self.runs]).as_dict(),
            "stage_p50_ms": {
                "condition": round(float(np.median([run.condition_ms for run in self.runs])), 2),
                "denoise_steps": [
                    round(float(np.median([run.denoise_step_ms[i] for run in self.runs])), 2) for i in range(steps)
                ],
                "decode": round(float(np.median([run.decode_ms for run in self.runs])), 2),
            },
            "audio_s_p50": round(audio_s, 3),
            "realtime_factor_p50": round(audio_s / (synth.p50 / 1000.0), 3) if synth.n else None,
            "audio_rms_diff_vs_baseline": (
                round(float(np.median(self.audio_rms_diff)), 6) if self.audio_rms_diff else None
            ),
        }


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("bench", help="time every runtime stage on mixed requests, models side by side")
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--model", type=Path, default=None, metavar="DIR", help="default: random full preset")
    models.add_argument("--models", type=Path, nargs="+", default=None, metavar="DIR", help="compare folders")
    parser.add_argument(
        "--precision",
        default="fp32",
        help="with --model: fp32,int8 (CPU) or fp32,fp16,trt (GPU) compares it with its copies, side by side",
    )
    parser.add_argument("--lengths", default=DEFAULT_LENGTHS, help=f"duration buckets in s (default {DEFAULT_LENGTHS})")
    parser.add_argument("--batches", default="1,8", help="batch sizes (default 1,8)")
    parser.add_argument("--steps", type=int, default=None, metavar="N", help="denoiser steps (default: the model's)")
    parser.add_argument("--repeats", type=int, default=5, help="timed batches per cell; medians are reported")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn requests")
    parser.add_argument("--out", type=Path, default=Path("bench/runtime.json"), metavar="FILE")
    parser.set_defaults(handler=run)


def parse_numbers(text: str, kind: type[float] | type[int]) -> list[Any]:
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CliError(f"expected a comma-separated list of numbers, got {text!r}") from None
    if not values or any(value <= 0 for value in values):
        raise CliError(f"expected positive numbers, got {text!r}")
    return values


def parse_lengths(text: str) -> list[LengthBucket]:
    """'1.5-2.5,4-6,10' -> buckets; a single number is a bucket of one length."""
    buckets = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            bucket = LengthBucket(float(low), float(high or low))
        except ValueError:
            raise CliError(f"--lengths: expected ranges like 1.5-2.5,4-6, got {text!r}") from None
        if not 0 < bucket.low_s <= bucket.high_s:
            raise CliError(f"--lengths: a range needs 0 < low <= high, got {part!r}")
        buckets.append(bucket)
    if not buckets:
        raise CliError("--lengths: give at least one range")
    return buckets


def draw_requests(
    rng: np.random.Generator, bucket: LengthBucket, batch: int, sample_rate_hz: int, vocab_size: int
) -> list[DrawnRequest]:
    """`batch` requests with durations drawn from the bucket, texts to match and a new voice each."""
    drawn = []
    for _ in range(batch):
        duration_s = float(rng.uniform(bucket.low_s, bucket.high_s))
        num_tokens = max(1, round(duration_s * TOKENS_PER_S * rng.uniform(0.8, 1.2)))
        reference_s = float(rng.uniform(*REFERENCE_RANGE_S))
        drawn.append(
            DrawnRequest(
                reference=(0.1 * rng.standard_normal(int(reference_s * sample_rate_hz))).astype(np.float32),
                token_ids=tuple(int(i) for i in rng.integers(1, vocab_size, num_tokens)),
                duration_s=duration_s,
                seed=int(rng.integers(0, 2**31)),
            )
        )
    return drawn


def largest_requests(bucket: LengthBucket, batch: int, sample_rate_hz: int) -> list[DrawnRequest]:
    """The bucket's largest shapes (longest duration, text and reference): the warm-up batch."""
    num_tokens = round(bucket.high_s * TOKENS_PER_S * 1.2)
    reference = np.full(int(REFERENCE_RANGE_S[1] * sample_rate_hz), 0.05, dtype=np.float32)
    return [
        DrawnRequest(
            reference=reference * (1 + 0.01 * i), token_ids=(1,) * num_tokens, duration_s=bucket.high_s, seed=i
        )
        for i in range(batch)
    ]


def measure(synthesizer: Synthesizer, drawn: Sequence[DrawnRequest], steps: int) -> Measurement:
    """One batch: every reference encoded (one clip per call, as the service does), then one synthesize_batch."""
    started = time.perf_counter()
    latents = [synthesizer.encode_reference(item.reference) for item in drawn]
    ref_encode_ms = (time.perf_counter() - started) * 1000.0
    requests = [
        SynthesisRequest(
            token_ids=item.token_ids, ref_latents=ref, duration_s=item.duration_s, seed=item.seed, num_steps=steps
        )
        for item, ref in zip(drawn, latents, strict=True)
    ]
    timings = StageTimings()
    started = time.perf_counter()
    results: list[SynthesisResult] = synthesizer.synthesize_batch(requests, timings)
    synth_ms = (time.perf_counter() - started) * 1000.0
    return Measurement(
        ref_encode_ms=ref_encode_ms,
        synth_ms=synth_ms,
        condition_ms=timings.condition_ms,
        denoise_step_ms=list(timings.denoise_step_ms),
        decode_ms=timings.decode_ms,
        audio_s=sum(result.duration_s for result in results),
        audio=[result.audio for result in results],
    )


def relative_rms_diff(audio: Sequence[np.ndarray], baseline: Sequence[np.ndarray]) -> float:
    """RMS of the difference over RMS of the baseline, over the whole batch."""
    diff = np.concatenate([a - b for a, b in zip(audio, baseline, strict=True)])
    reference = np.concatenate(list(baseline))
    return float(np.sqrt(np.mean(diff**2)) / max(float(np.sqrt(np.mean(reference**2))), 1e-12))


# --- the int8 (fp16) copy ------------------------------------------------------------------------------------

FALLBACK_MARKER = "QUANTIZED_BY_BENCH"  # a copy made by quantize_dynamic, before model.runtime.optimize existed
OPTIMIZE = "model.runtime.optimize"
FALLBACK = "quantize_dynamic (MatMul, int8 weights, dynamic activations)"


def precision_copy(model_dir: Path, precision: str) -> tuple[Path, str]:
    """The model's copy in `precision`, `<dir>-<precision>` beside it, made on first use; and how it was made.

    `model.runtime.optimize.optimize_model_dir` (what `smalltts optimize` runs) makes it where that module
    exists; otherwise int8 falls back to ONNX Runtime's dynamic quantization of every MatMul.
    """
    target = model_dir.parent / f"{model_dir.name}-{precision}"
    marker = target / FALLBACK_MARKER
    has_optimize = importlib.util.find_spec("model.runtime.optimize") is not None
    try:
        require_model_dir(target)
        if not (marker.exists() and has_optimize):  # a fallback copy is remade once optimize exists
            return target, FALLBACK if marker.exists() else OPTIMIZE
    except AssetError:
        pass
    if has_optimize:
        optimize = importlib.import_module("model.runtime.optimize")
        optimize.optimize_model_dir(model_dir, target, precision, overwrite=True)
        return target, OPTIMIZE
    if precision != "int8":
        raise CliError(f"--precision {precision} needs model.runtime.optimize (smalltts optimize)")
    staging = model_dir.parent / f".{target.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    quantize_dynamic_dir(model_dir, staging)
    (staging / FALLBACK_MARKER).write_text("onnxruntime.quantization.quantize_dynamic, MatMul, QInt8 weights\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target, FALLBACK


def quantize_dynamic_dir(model_dir: Path, out_dir: Path) -> None:
    """Dynamic int8 quantization of every graph's MatMuls (sidecars copied as they are)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    shutil.copytree(model_dir, out_dir, ignore=shutil.ignore_patterns("*.onnx", "*.onnx.data"))
    for graph in sorted(model_dir.rglob("*.onnx")):
        target = out_dir / graph.relative_to(model_dir)
        quantize_dynamic(graph, target, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])


# --- the run ------------------------------------------------------------------------------------------------


def resolve_variants(args: argparse.Namespace) -> list[Variant]:
    try:
        if args.models is not None:
            dirs = [require_model_dir(path) for path in args.models]
            labels = [path.name for path in dirs]
            if len(set(labels)) < len(labels):
                labels = [str(path) for path in dirs]
            return [Variant(label, path) for label, path in zip(labels, dirs, strict=True)]
        base = require_model_dir(args.model) if args.model is not None else ensure_random_model("full")
    except AssetError as exc:
        raise CliError(str(exc)) from None
    precisions = [part.strip() for part in str(args.precision).split(",") if part.strip()]
    if not precisions or any(p not in PRECISIONS for p in precisions) or len(set(precisions)) < len(precisions):
        raise CliError(f"--precision: a list of {', '.join(PRECISIONS)}, got {args.precision!r}")
    available = ort.get_available_providers()
    if "trt" in precisions and TENSORRT_PROVIDER not in available:
        raise CliError(
            "--precision trt needs onnxruntime-gpu with TensorRT (this onnxruntime has no TensorRT provider)"
        )
    on_cuda = [CUDA_PROVIDER, CPU_PROVIDER] if CUDA_PROVIDER in available else None
    variants = []
    for precision in precisions:
        if precision in ("fp32", "trt"):
            variants.append(Variant(precision, base, providers=None if precision == "trt" else on_cuda))
        else:
            variants.append(Variant(precision, *precision_copy(base, precision), providers=on_cuda))
    return variants


def run(args: argparse.Namespace) -> int:
    buckets = parse_lengths(args.lengths)
    batches = parse_numbers(args.batches, int)
    if args.repeats < 1:
        raise CliError("--repeats must be at least 1")
    variants = resolve_variants(args)
    # No caches: every request is a new voice anyway, and a cache must not help a warm-up request either.
    synthesizers = [
        Synthesizer.load(v.model_dir, v.providers, intra_op_threads=args.threads, cache_mb=0) for v in variants
    ]
    machine = describe_machine(args.threads)
    baseline = synthesizers[0]
    steps: int = args.steps if args.steps is not None else baseline.default_steps
    out = sys.stdout
    out.write(
        f"machine: {machine['cpu']}, {machine['usable_cores']} usable cores, onnxruntime {machine['onnxruntime']} "
        f"{', '.join(baseline.providers)}, intra-op threads {machine['intra_op_threads']}, "
        f"load average {machine['load_average_1m']}\n"
    )
    for variant, synthesizer in zip(variants, synthesizers, strict=True):
        summary = synthesizer.summary()
        made_by = f", made by {variant.made_by}" if variant.made_by else ""
        out.write(
            f"model {variant.label}: {variant.model_dir} (preset {summary['preset']}, "
            f"{summary['num_parameters']:,} parameters, {'trained' if summary['trained'] else 'random weights'}"
            f"{made_by}; {', '.join(synthesizer.providers)})\n"
        )
    out.write(
        f"requests: durations drawn per bucket, {TOKENS_PER_S} tokens/s +-20 %, a new {REFERENCE_RANGE_S[0]:g}-"
        f"{REFERENCE_RANGE_S[1]:g} s voice each; {steps} {baseline.sampler} steps; warm-up per bucket, then "
        f"{args.repeats} timed batches per cell, models alternating\n\n{header()}"
    )
    rng = np.random.default_rng(args.seed)
    vocab_size = baseline.config.text.vocab_size
    rate = baseline.sample_rate_hz
    cells: list[Cell] = []
    started = time.perf_counter()
    for bucket in buckets:
        for batch in batches:
            row = [Cell(variant.label, bucket, batch) for variant in variants]
            for synthesizer in synthesizers:  # warm-up at this bucket's largest shapes: arenas grow once
                measure(synthesizer, largest_requests(bucket, batch, rate), steps)
            for repeat in range(args.repeats):
                drawn = draw_requests(rng, bucket, batch, rate, vocab_size)
                order = list(range(len(variants)))
                if repeat % 2:
                    order.reverse()
                runs = {i: measure(synthesizers[i], drawn, steps) for i in order}
                for i, cell in enumerate(row):
                    cell.runs.append(runs[i])
                    if i:
                        cell.audio_rms_diff.append(relative_rms_diff(runs[i].audio, runs[0].audio))
                for measurement in runs.values():
                    measurement.audio = []  # compared; no need to hold every batch's audio
            for cell in row:
                cells.append(cell)
                out.write(format_row(cell.report(), row[0].report()))
            out.flush()
    machine["load_average_1m_at_end"] = load_average()
    elapsed_s = time.perf_counter() - started
    out.write(f"\n{len(cells)} cells in {elapsed_s:.0f} s\n")
    report = {
        "machine": machine,
        "models": [
            {"label": v.label, "dir": str(v.model_dir), "made_by": v.made_by, **s.summary()}
            for v, s in zip(variants, synthesizers, strict=True)
        ],
        "settings": {
            "lengths_s": [[b.low_s, b.high_s] for b in buckets],
            "batches": batches,
            "steps": steps,
            "sampler": baseline.sampler,
            "repeats": args.repeats,
            "tokens_per_s": TOKENS_PER_S,
            "reference_range_s": list(REFERENCE_RANGE_S),
            "seed": args.seed,
            "elapsed_s": round(elapsed_s, 1),
        },
        "cells": [cell.report() for cell in cells],
        "speedups": speedups([cell.report() for cell in cells], variants[0].label),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    chart = args.out.with_suffix(".png")
    why_not = write_bar_chart(chart, chart_title(report), chart_panels(report))
    out.write(f"wrote {args.out}" + (f" ({why_not})" if why_not else f" and {chart}") + "\n")
    return 0


def speedups(cells: Sequence[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """Median end-to-end time of the baseline over each other model's, per (bucket, batch)."""
    base = {(tuple(c["lengths_s"]), c["batch"]): c for c in cells if c["variant"] == baseline}
    rows = []
    for cell in cells:
        key = (tuple(cell["lengths_s"]), cell["batch"])
        if cell["variant"] == baseline or key not in base:
            continue
        rows.append(
            {
                "variant": cell["variant"],
                "baseline": baseline,
                "lengths_s": cell["lengths_s"],
                "batch": cell["batch"],
                "synth_p50_speedup": round(base[key]["synth_ms"]["p50"] / cell["synth_ms"]["p50"], 3),
            }
        )
    return rows


# --- output -------------------------------------------------------------------------------------------------

# The table has room for four step columns; a many-step (DDIM) model's later steps are summed into the fourth.
STEP_COLUMNS = 4


def header() -> str:
    steps = "".join(f"{f'step {i + 1}':>8}" for i in range(STEP_COLUMNS))
    return (
        f"{'lengths':<11}{'batch':>5} {'model':<8}{'ref enc':>9}{'cond':>9}{steps}{'decode':>9}"
        f"{'e2e p50':>10}{'p90':>9}{'p99':>9}{'x rt':>7}{'speedup':>8}\n"
    )


def format_row(cell: dict[str, Any], baseline: dict[str, Any]) -> str:
    stages = cell["stage_p50_ms"]
    step_ms: list[float] = stages["denoise_steps"]
    if len(step_ms) > STEP_COLUMNS:
        step_ms = [*step_ms[: STEP_COLUMNS - 1], sum(step_ms[STEP_COLUMNS - 1 :])]
    steps = "".join(f"{value:8.0f}" for value in step_ms).ljust(8 * STEP_COLUMNS)
    synth = cell["synth_ms"]
    speedup = "" if cell["variant"] == baseline["variant"] else f"{baseline['synth_ms']['p50'] / synth['p50']:.2f}x"
    lengths = f"{cell['lengths_s'][0]:g}-{cell['lengths_s'][1]:g} s"
    return (
        f"{lengths:<11}{cell['batch']:>5} {cell['variant']:<8}"
        f"{cell['ref_encode_ms']['p50']:9.0f}{stages['condition']:9.0f}"
        f"{steps}{stages['decode']:9.0f}{synth['p50']:10.0f}{synth['p90']:9.0f}{synth['p99']:9.0f}"
        f"{cell['realtime_factor_p50'] or 0:7.2f}{speedup:>8}\n"
    )


def chart_title(report: dict[str, Any]) -> str:
    machine = report["machine"]
    return (
        f"smalltts bench: {', '.join(m['label'] for m in report['models'])}\n{machine['cpu']} "
        f"({machine['usable_cores']} cores, load {machine['load_average_1m']}), onnxruntime {machine['onnxruntime']}"
    )


def chart_panels(report: dict[str, Any]) -> list[ChartPanel]:
    groups: dict[tuple[float, float, int], BarGroup] = {}
    for cell in report["cells"]:
        low, high = cell["lengths_s"]
        key = (low, high, cell["batch"])
        group = groups.setdefault(key, BarGroup(f"{low:g}-{high:g} s\nbatch {cell['batch']}", {}, {}))
        group.values[cell["variant"]] = cell["synth_ms"]["p50"]
        assert group.whiskers is not None
        group.whiskers[cell["variant"]] = cell["synth_ms"]["p90"]
    speedup_groups: dict[tuple[float, float, int], BarGroup] = {}
    for row in report["speedups"]:
        low, high = row["lengths_s"]
        key = (low, high, row["batch"])
        speedup_groups.setdefault(key, BarGroup(f"{low:g}-{high:g} s\nbatch {row['batch']}", {}))
        speedup_groups[key].values[f"{row['variant']} vs {row['baseline']}"] = row["synth_p50_speedup"]
    return [
        ChartPanel("end to end (conditions + steps + decode), median; whisker p90", "ms", list(groups.values()), True),
        ChartPanel("speedup of the median over the baseline", "x", list(speedup_groups.values())),
    ]

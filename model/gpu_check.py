"""`make gpu-check`: on one NVIDIA GPU, the CUDA-marked tests and the GPU benchmarks, within 8 minutes.

    PYTHONPATH=. python -m model.gpu_check --out-dir bench/gpu                                   # make gpu-check
    PYTHONPATH=. python -m model.gpu_check --device cpu --preset tiny --quick --out-dir /tmp/gc   # CPU smoke test

It needs only the standard library, numpy and torch (matplotlib for the PNG when installed; onnxruntime for the
ONNX path when its GPU build is installed): no install, no espeak-ng, no `pip install -e`. The steps:

1. The tests marked `cuda` (pytest, without the suite's conftest, which needs the training packages).
2. The torch reference of what the hardware gives: the `full` DiT with random weights (the weights do not change
   the cost), bf16 weights under bf16 autocast, SDPA attention, the condition encoder and the student's 4 steps
   (`model.schedule`'s v-prediction algebra, as `model.runtime.sampler` runs it), at 2/5/10 s and batch 1/8/32.
   Within a batch the lengths are drawn (75-100 % of the bucket, text to match, a 3-8 s reference each) and
   padded to the bucket. Each shape is warmed up, captured as one CUDA graph (left uncaptured when capture
   fails; `--mode compile` first compiles with torch.compile, falling back to eager) and replayed;
   `torch.cuda.synchronize()` brackets every timing. The stages (conditions, each step) are also timed one by
   one in eager mode.
3. The ONNX path (`model.runtime`), where onnxruntime has the CUDA provider: the same cells, exported once.

Everything goes to --out-dir as gpu_check.json and gpu_check.png; the acceptance figures of issue 16 are judged
in the JSON (10 s at batch 1 <= 25 ms; batch 32 >= 3,000x real time; batch 8 <= 2.5x batch 1; ONNX within 1.5x).
A time budget (--budget-s) skips what would not fit and says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from model.export import build_random_model
from model.nn.dit import Conditions, DiTModel
from model.schedule import add_noise, timesteps, x0_from_v

TOKENS_PER_S = 14  # espeak-ng phoneme tokens per second of speech, roughly (as `smalltts bench`)
REFERENCE_RANGE_S = (3.0, 8.0)
CUDA_TESTS = ("tests/model/test_gpu_check.py",)
KV_INPUTS = ("k_ref", "v_ref", "k_text", "v_text")  # the denoiser's cross K/V inputs (model.export names)
# Issue 16's bars for the torch reference of `full` (conditions + 4 steps).
MAX_MS_10S_BATCH1 = 25.0
MIN_REALTIME_BATCH32 = 3000.0
MAX_BATCH8_OVER_BATCH1 = 2.5
MAX_ONNX_OVER_TORCH = 1.5


@dataclass(frozen=True)
class GpuCheckConfig:
    device: str = "cuda"
    preset: str = "full"
    durations_s: tuple[float, ...] = (10.0, 5.0, 2.0)  # 10 s first: the acceptance cells run before any budget cut
    batches: tuple[int, ...] = (1, 8, 32)
    steps: int = 4
    iterations: int = 20
    mode: str = "auto"  # auto (graphs on CUDA, eager on CPU) | graphs | compile | eager
    dtype: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
    tests: bool = True
    onnx: str = "auto"  # auto (when onnxruntime has CUDA) | on | off
    budget_s: float = 450.0
    out_dir: Path = Path("bench/gpu")
    seed: int = 0


@dataclass
class CellResult:
    duration_s: float
    batch: int
    path: str  # "torch" | "onnx"
    mode: str  # what really ran: graphs | compile | eager | onnx
    iterations: int = 0
    ms: dict[str, float] = field(default_factory=dict)  # p50, p90, p99, mean of conditions + all steps
    stage_ms: dict[str, float] = field(default_factory=dict)  # eager, synchronised per stage: medians
    audio_s: float = 0.0  # the batch's drawn audio seconds
    realtime_factor: float | None = None  # audio_s / p50
    kv_uploads_per_batch: int | None = None  # ONNX path: host -> device copies of each cross K/V input per batch
    note: str = ""


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and mean, rounded to 0.001 (empty: {})."""
    if not values:
        return {}
    array = np.asarray(values, dtype=np.float64)
    p50, p90, p99 = np.percentile(array, (50, 90, 99))
    return {"p50": round(float(p50), 3), "p90": round(float(p90), 3), "p99": round(float(p99), 3), "n": len(array)}


# --- environment and tests ----------------------------------------------------------------------------------


def describe_environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": str(device),
        "matplotlib": importlib.util.find_spec("matplotlib") is not None,
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env |= {"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1)}
        env["compute_capability"] = f"{props.major}.{props.minor}"
    else:
        env["cpu"] = _cpu_name()
    try:
        import onnxruntime as ort

        env |= {"onnxruntime": ort.__version__, "onnxruntime_providers": ort.get_available_providers()}
    except ImportError:
        env["onnxruntime"] = None
    return env


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_cuda_tests(timeout_s: float) -> dict[str, Any]:
    """The tests marked `cuda`, by pytest in a subprocess; the suite's conftest is skipped (training imports)."""
    if importlib.util.find_spec("pytest") is None:
        return {"status": "skipped", "reason": "pytest is not installed"}
    command = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "--noconftest", "-p", "no:cacheprovider"]
    command += [path for path in CUDA_TESTS if Path(path).exists()]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=max(10.0, timeout_s), check=False)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "timeout_s": round(timeout_s), "command": " ".join(command)}
    tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
    return {
        "status": "passed" if done.returncode == 0 else ("none selected" if done.returncode == 5 else "failed"),
        "returncode": done.returncode,
        "seconds": round(time.perf_counter() - started, 1),
        "command": " ".join(command),
        "tail": tail,
    }


# --- the torch reference ------------------------------------------------------------------------------------


@dataclass
class Inputs:
    """Static input tensors of one cell (a CUDA graph replays on exactly these)."""

    ref_latents: Tensor  # (b r c)
    ref_lengths: Tensor  # (b,)
    phonemes: Tensor  # (b p)
    phonemes_mask: Tensor  # (b p)
    mask: Tensor  # (b n)
    eps: Tensor  # (s b n c): one noise draw per step
    rope: Tensor  # (1 n rope_dim)
    audio_s: float


def draw_inputs(
    model: DiTModel, duration_s: float, batch: int, steps: int, device: torch.device, dtype: torch.dtype, seed: int
) -> Inputs:
    """A batch whose items' lengths, texts and voices differ, padded to the bucket's largest shapes."""
    cfg = model.cfg
    rng = np.random.default_rng(seed)
    frame_rate_hz = cfg.codec.sample_rate_hz / cfg.codec.hop_samples
    max_frames = max(1, math.ceil(duration_s * frame_rate_hz))
    max_tokens = max(1, round(duration_s * TOKENS_PER_S * 1.2))
    max_ref = max(1, math.ceil(REFERENCE_RANGE_S[1] * frame_rate_hz))
    frames = rng.integers(max(1, int(0.75 * max_frames)), max_frames + 1, batch)
    tokens = np.minimum(max_tokens, np.maximum(1, np.round(frames / frame_rate_hz * TOKENS_PER_S)).astype(int))
    refs = np.round(rng.uniform(*REFERENCE_RANGE_S, batch) * frame_rate_hz).astype(int).clip(1, max_ref)
    generator = torch.Generator().manual_seed(seed)
    mask = torch.arange(max_frames)[None, :] < torch.as_tensor(frames)[:, None]  # (b n)
    phonemes_mask = torch.arange(max_tokens)[None, :] < torch.as_tensor(tokens)[:, None]  # (b p)
    phonemes = torch.randint(1, cfg.text.vocab_size, (batch, max_tokens), generator=generator) * phonemes_mask
    ref_latents = torch.randn(batch, max_ref, cfg.latent_dim, generator=generator)  # (b r c)
    ref_latents *= (torch.arange(max_ref)[None, :] < torch.as_tensor(refs)[:, None])[..., None]
    eps = torch.randn(steps, batch, max_frames, cfg.latent_dim, generator=generator) * mask[None, :, :, None]
    return Inputs(
        ref_latents=ref_latents.to(device, dtype),
        ref_lengths=torch.as_tensor(refs, dtype=torch.int64).to(device),
        phonemes=phonemes.to(device),
        phonemes_mask=phonemes_mask.to(device),
        mask=mask.to(device),
        eps=eps.to(device, dtype),
        rope=model.rope(max_frames, device),
        audio_s=float(frames.sum() / frame_rate_hz),
    )


@dataclass(frozen=True)
class Network:
    """The two calls the sampler makes: the model's own methods, or their torch.compile'd versions."""

    encode_conditions: Callable[..., Conditions]
    denoise_step: Callable[..., Any]


def sample(
    model: DiTModel,
    inputs: Inputs,
    ts: Sequence[float],
    stage: Callable[[str], None] | None = None,
    network: Network | None = None,
) -> Tensor:
    """Conditions, then the student's loop (x_pred = 0; re-noise; v; x0 from v) as `model.runtime.sampler`."""
    schedule = model.cfg.schedule
    net = network if network is not None else Network(model.encode_conditions, model.denoise_step)
    cond = net.encode_conditions(inputs.ref_latents, inputs.ref_lengths, inputs.phonemes, inputs.phonemes_mask)
    if stage is not None:
        stage("conditions")
    x_pred = torch.zeros_like(inputs.eps[0])  # (b n c)
    keep = inputs.mask[..., None]  # (b n 1)
    for i, t in enumerate(ts):
        x_t = add_noise(x_pred, inputs.eps[i], float(t), schedule)  # (b n c)
        t_batch = torch.full((x_t.shape[0],), float(t), device=x_t.device)
        v = net.denoise_step(x_t, inputs.mask, t_batch, cond, inputs.rope)
        assert isinstance(v, Tensor)
        x_pred = torch.where(keep, x0_from_v(x_t, v, float(t), schedule), torch.zeros_like(x_t))
        if stage is not None:
            stage(f"step {i + 1}")
    return x_pred


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TorchReference:
    """The random model on the device and one runnable per cell (a captured graph, compiled or eager)."""

    def __init__(self, config: GpuCheckConfig, device: torch.device) -> None:
        self.config = config
        self.device = device
        bf16 = config.dtype == "bf16" or (config.dtype == "auto" and device.type == "cuda")
        self.dtype = torch.bfloat16 if bf16 else torch.float32
        self.model = build_random_model(config.preset, seed=config.seed).to(device, self.dtype).eval()
        self.ts = timesteps("trained", config.steps)
        mode = config.mode if config.mode != "auto" else ("graphs" if device.type == "cuda" else "eager")
        if mode == "graphs" and device.type != "cuda":
            mode = "eager"
        self.mode = mode
        self.notes: list[str] = []
        self._compiled: Network | None = None
        if mode == "compile":
            # The network's two calls, not the loop: the schedule's float algebra stays in Python. Default
            # inductor mode: max-autotune would spend the time budget tuning nine shapes.
            try:
                self._compiled = Network(
                    torch.compile(self.model.encode_conditions, dynamic=False),
                    torch.compile(self.model.denoise_step, dynamic=False),
                )
            except Exception as exc:  # torch.compile raises many kinds; eager still measures the hardware
                self.notes.append(f"torch.compile failed ({type(exc).__name__}: {exc}); eager instead")
                self.mode = "eager"

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    def _eager(self, inputs: Inputs) -> Tensor:
        with self._autocast():
            return sample(self.model, inputs, self.ts)

    def _sample_compiled(self, inputs: Inputs) -> Tensor:
        with self._autocast():
            return sample(self.model, inputs, self.ts, network=self._compiled)

    @torch.inference_mode()
    def prepare(self, inputs: Inputs) -> tuple[Callable[[], Tensor], str]:
        """A call that runs the cell, warmed up, and what it is: compiled and/or captured as the mode asks.

        `compile` compiles (with an eager fallback) and then captures the compiled call as a CUDA graph too;
        `graphs` captures the eager call. A capture that fails leaves the call uncaptured.
        """
        runner, name = self._eager, "eager"
        if self.mode == "compile":
            try:
                for _ in range(2):  # compilation happens here, on the first call at this shape
                    self._sample_compiled(inputs)
                _sync(self.device)
                runner, name = self._sample_compiled, "compile"
            except Exception as exc:  # torch.compile fails in many kinds; eager still measures the hardware
                self.notes.append(f"compiled call failed ({type(exc).__name__}); eager for this cell")
        if self.mode in ("graphs", "compile") and self.device.type == "cuda":
            try:
                stream = torch.cuda.Stream(self.device)
                stream.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(stream):  # warm-up on a side stream, as CUDA graph capture wants
                    for _ in range(3):
                        runner(inputs)
                torch.cuda.current_stream(self.device).wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    output = runner(inputs)

                def replay() -> Tensor:
                    graph.replay()
                    return output

                replay()
                _sync(self.device)
                return replay, "graphs" if name == "eager" else f"{name}+graphs"
            except RuntimeError as exc:  # capture refused (torch.cuda.CudaError is one): measure uncaptured
                self.notes.append(f"CUDA graph capture failed ({exc}); {name} without a graph for this cell")
                _sync(self.device)
        for _ in range(2):
            runner(inputs)
        _sync(self.device)
        return (lambda: runner(inputs)), name

    @torch.inference_mode()
    def stage_times(self, inputs: Inputs, repeats: int) -> dict[str, float]:
        """Median ms per stage (conditions, step 1..n), eager, the device synchronised after each stage."""
        times: dict[str, list[float]] = {}
        for _ in range(repeats):
            _sync(self.device)
            last = [time.perf_counter()]

            def stage(name: str, last: list[float] = last) -> None:
                _sync(self.device)
                now = time.perf_counter()
                times.setdefault(name, []).append((now - last[0]) * 1000.0)
                last[0] = now

            with self._autocast():
                sample(self.model, inputs, self.ts, stage)
        return {name: round(float(np.median(values)), 3) for name, values in times.items()}


def time_call(call: Callable[[], Any], device: torch.device, iterations: int, deadline: float) -> list[float]:
    """Wall ms of each call, synchronised before and after; stops early at the deadline (at least one call)."""
    values: list[float] = []
    with torch.inference_mode():
        for _ in range(max(1, iterations)):
            _sync(device)
            started = time.perf_counter()
            call()
            _sync(device)
            values.append((time.perf_counter() - started) * 1000.0)
            if time.perf_counter() > deadline:
                break
    return values


# --- the ONNX path ------------------------------------------------------------------------------------------


def onnx_cells(config: GpuCheckConfig, deadline: float, out: Callable[[str], None]) -> tuple[list[CellResult], str]:
    """The same cells through `model.runtime` (conditions + steps, decode excluded), on ONNX Runtime's CUDA."""
    from model.export import build_random_model_dir
    from model.runtime.assets import DENOISER
    from model.runtime.graph import CPU_PROVIDER, CUDA_PROVIDER
    from model.runtime.synthesizer import StageTimings, SynthesisRequest, Synthesizer

    results: list[CellResult] = []
    with tempfile.TemporaryDirectory(prefix="smalltts-gpu-check-") as scratch:
        model_dir = build_random_model_dir(config.preset, Path(scratch) / "model", seed=config.seed)
        providers = [CUDA_PROVIDER, CPU_PROVIDER] if config.device == "cuda" else [CPU_PROVIDER]
        # I/O binding also on the CPU, so the smoke test counts the K/V uploads as a GPU run does.
        synthesizer = Synthesizer.load(model_dir, providers=providers, cache_mb=0, io_binding=True)
        denoiser = synthesizer.graphs[DENOISER]
        rng = np.random.default_rng(config.seed)
        vocab = synthesizer.config.text.vocab_size
        for duration_s in config.durations_s:
            for batch in config.batches:
                cell = CellResult(duration_s, batch, "onnx", "onnx")
                if time.perf_counter() > deadline:
                    cell.note = "skipped: time budget spent"
                    results.append(cell)
                    continue
                requests = []
                for _ in range(batch):
                    item_s = float(rng.uniform(0.75, 1.0) * duration_s)
                    ref_frames = int(rng.uniform(*REFERENCE_RANGE_S) * synthesizer.frame_rate_hz)
                    requests.append(
                        SynthesisRequest(
                            token_ids=tuple(int(i) for i in rng.integers(1, vocab, max(1, round(item_s * 14)))),
                            ref_latents=rng.standard_normal((ref_frames, synthesizer.latent_dim)).astype(np.float32),
                            duration_s=item_s,
                            seed=int(rng.integers(0, 2**31)),
                            num_steps=config.steps,
                        )
                    )
                synthesizer.synthesize_batch(requests)  # warm-up at this shape
                totals: list[float] = []
                stages: dict[str, list[float]] = {}
                kv_uploads: list[int] = []
                for _ in range(max(1, config.iterations // 2)):
                    timings = StageTimings()
                    counter = getattr(denoiser, "uploads", None)  # host -> device copies, where the runtime counts them
                    before = dict(counter or {})
                    synthesizer.synthesize_batch(requests, timings)
                    if counter is not None:
                        kv_uploads.append(max(counter[name] - before.get(name, 0) for name in KV_INPUTS))
                    totals.append(timings.condition_ms + sum(timings.denoise_step_ms))
                    stages.setdefault("conditions", []).append(timings.condition_ms)
                    for i, value in enumerate(timings.denoise_step_ms):
                        stages.setdefault(f"step {i + 1}", []).append(value)
                    if time.perf_counter() > deadline:
                        break
                cell.iterations = len(totals)
                cell.ms = percentiles(totals)
                cell.stage_ms = {name: round(float(np.median(v)), 3) for name, v in stages.items()}
                frames = sum(synthesizer.num_frames(r.duration_s) for r in requests)
                cell.audio_s = round(frames / synthesizer.frame_rate_hz, 3)
                cell.realtime_factor = round(cell.audio_s / (cell.ms["p50"] / 1000.0), 1)
                cell.kv_uploads_per_batch = max(kv_uploads) if kv_uploads else None
                results.append(cell)
                out(_format_cell(cell))
    return results, ",".join(providers)


# --- the run ------------------------------------------------------------------------------------------------


def judge(cells: Sequence[CellResult]) -> dict[str, Any]:
    """Issue 16's GPU bars against what was measured (None where the cell was not measured)."""
    torch_cells = {(c.duration_s, c.batch): c for c in cells if c.path == "torch" and c.ms}
    onnx = {(c.duration_s, c.batch): c for c in cells if c.path == "onnx" and c.ms}
    checks: dict[str, Any] = {}
    ten_one = torch_cells.get((10.0, 1))
    checks["10s_batch1_ms"] = _check(ten_one.ms["p50"] if ten_one else None, "<=", MAX_MS_10S_BATCH1)
    thirty_two = torch_cells.get((10.0, 32))
    checks["10s_batch32_realtime"] = _check(
        thirty_two.realtime_factor if thirty_two else None, ">=", MIN_REALTIME_BATCH32
    )
    for duration_s in sorted({key[0] for key in torch_cells}):
        one, eight = torch_cells.get((duration_s, 1)), torch_cells.get((duration_s, 8))
        ratio = eight.ms["p50"] / one.ms["p50"] if one and eight else None
        checks[f"{duration_s:g}s_batch8_over_batch1"] = _check(ratio, "<=", MAX_BATCH8_OVER_BATCH1)
    for key, cell in onnx.items():
        reference = torch_cells.get(key)
        ratio = cell.ms["p50"] / reference.ms["p50"] if reference else None
        checks[f"onnx_{key[0]:g}s_batch{key[1]}_over_torch"] = _check(ratio, "<=", MAX_ONNX_OVER_TORCH)
    uploads = [c.kv_uploads_per_batch for c in onnx.values() if c.kv_uploads_per_batch is not None]
    checks["onnx_kv_uploads_per_batch"] = _check(max(uploads) if uploads else None, "<=", 1)
    return checks


def _check(value: float | None, op: str, bar: float) -> dict[str, Any]:
    if value is None:
        return {"value": None, "bar": f"{op} {bar:g}", "passed": None}
    passed = value <= bar if op == "<=" else value >= bar
    return {"value": round(value, 3), "bar": f"{op} {bar:g}", "passed": passed}


def _format_cell(cell: CellResult) -> str:
    if not cell.ms:
        return f"{cell.path:<6}{cell.duration_s:>5g} s  batch {cell.batch:>3}  {cell.note}"
    stages = " ".join(f"{name} {value:.2f}" for name, value in cell.stage_ms.items())
    return (
        f"{cell.path:<6}{cell.duration_s:>5g} s  batch {cell.batch:>3}  {cell.mode:<7} p50 {cell.ms['p50']:9.2f} ms  "
        f"p90 {cell.ms['p90']:9.2f}  p99 {cell.ms['p99']:9.2f}  {cell.realtime_factor or 0:9.1f}x real time  "
        f"[stages, eager: {stages}]"
    )


def run(config: GpuCheckConfig) -> dict[str, Any]:
    started = time.perf_counter()
    deadline = started + config.budget_s

    def out(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    if config.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu-check: torch sees no CUDA device (use --device cpu for the CPU smoke test)")
    device = torch.device(config.device)
    env = describe_environment(device)
    out(f"gpu-check: {env.get('gpu') or env.get('cpu')}, torch {env['torch']}, CUDA {env['cuda']}")
    report: dict[str, Any] = {"environment": env, "config": {k: str(v) for k, v in asdict(config).items()}}
    if config.tests and device.type == "cuda":
        out("running the tests marked cuda ...")
        report["cuda_tests"] = run_cuda_tests(min(180.0, config.budget_s / 3))
        out(f"cuda tests: {report['cuda_tests']['status']}")
    else:
        report["cuda_tests"] = {"status": "skipped", "reason": "no CUDA device" if config.tests else "--no-tests"}

    if device.type != "cuda":
        # The CPU run is a smoke test: one thread, since OpenMP's spinning threads crawl on a shared machine.
        torch.set_num_threads(1)
    reference = TorchReference(config, device)
    report["torch_reference"] = {
        "preset": config.preset,
        "num_parameters": reference.num_parameters(),
        "dtype": str(reference.dtype).removeprefix("torch."),
        "mode": reference.mode,
        "steps": config.steps,
        "timesteps": list(reference.ts),
    }
    cells: list[CellResult] = []
    onnx_share = 0.35 if _wants_onnx(config) else 0.0
    torch_deadline = deadline - onnx_share * max(0.0, deadline - time.perf_counter())
    for duration_s in config.durations_s:
        for batch in config.batches:
            cell = CellResult(duration_s, batch, "torch", reference.mode)
            if time.perf_counter() > torch_deadline:
                cell.note = "skipped: time budget spent"
                cells.append(cell)
                out(_format_cell(cell))
                continue
            inputs = draw_inputs(
                reference.model, duration_s, batch, config.steps, device, reference.dtype, config.seed + batch
            )
            call, cell.mode = reference.prepare(inputs)
            values = time_call(call, device, config.iterations, torch_deadline)
            cell.iterations = len(values)
            cell.ms = percentiles(values)
            cell.stage_ms = reference.stage_times(inputs, repeats=3 if device.type == "cuda" else 1)
            cell.audio_s = round(inputs.audio_s, 3)
            cell.realtime_factor = round(inputs.audio_s / (cell.ms["p50"] / 1000.0), 1)
            del call
            cells.append(cell)
            out(_format_cell(cell))
            if device.type == "cuda":
                torch.cuda.empty_cache()
    report["torch_reference"]["notes"] = reference.notes
    del reference
    if _wants_onnx(config):
        if time.perf_counter() < deadline:
            out("ONNX path (model.runtime) ...")
            onnx_results, providers = onnx_cells(config, deadline, out)
            cells += onnx_results
            report["onnx"] = {"status": "measured", "providers": providers}
        else:
            report["onnx"] = {"status": "skipped", "reason": "time budget spent"}
    else:
        report["onnx"] = {"status": "skipped", "reason": "onnxruntime has no CUDA provider here (CPU-only build)"}
    report["cells"] = [asdict(cell) for cell in cells]
    report["checks"] = judge(cells)
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = config.out_dir / "gpu_check.json"
    report["chart"] = write_chart(report, config.out_dir / "gpu_check.png")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    for name, check in report["checks"].items():
        verdict = {True: "pass", False: "FAIL", None: "not measured"}[check["passed"]]
        out(f"check {name}: {check['value']} ({check['bar']}): {verdict}")
    out(
        f"wrote {json_path} ({report['chart'] or 'and ' + str(config.out_dir / 'gpu_check.png')}) "
        f"in {report['elapsed_s']:.0f} s"
    )
    return report


def _wants_onnx(config: GpuCheckConfig) -> bool:
    if config.onnx != "auto":
        return config.onnx == "on"
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return config.device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers()


def write_chart(report: dict[str, Any], path: Path) -> str | None:
    """Median ms per cell (torch and ONNX side by side) and real-time factor; None when written, else why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed; no PNG written"
    cells = [c for c in report["cells"] if c["ms"]]
    if not cells:
        return "nothing measured; no PNG written"
    keys = list(dict.fromkeys((c["duration_s"], c["batch"]) for c in cells))
    paths = list(dict.fromkeys(c["path"] for c in cells))
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(max(6.0, 0.9 * len(keys)), 7.0))
    width = 0.8 / len(paths)
    for index, name in enumerate(paths):
        by_key = {(c["duration_s"], c["batch"]): c for c in cells if c["path"] == name}
        xs = [k + (index - (len(paths) - 1) / 2) * width for k in range(len(keys))]
        top.bar(xs, [by_key[key]["ms"]["p50"] if key in by_key else math.nan for key in keys], width, label=name)
        bottom.bar(
            xs, [by_key[key]["realtime_factor"] or math.nan if key in by_key else math.nan for key in keys], width
        )
    labels = [f"{d:g} s\nbatch {b}" for d, b in keys]
    for axis, ylabel in ((top, "ms, conditions + steps (p50)"), (bottom, "x real time")):
        axis.set_xticks(range(len(keys)))
        axis.set_xticklabels(labels, fontsize=8)
        axis.set_ylabel(ylabel, fontsize=9)
        axis.set_yscale("log")
        axis.grid(axis="y", alpha=0.3)
    top.legend(fontsize=8)
    env = report["environment"]
    figure.suptitle(
        f"gpu-check: {report['torch_reference']['preset']} on {env.get('gpu') or env.get('cpu')}, torch {env['torch']}",
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None


def parse_args(argv: Sequence[str] | None = None) -> GpuCheckConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (smoke test)")
    parser.add_argument("--preset", default="full")
    parser.add_argument("--durations", default="10,5,2", help="seconds of audio per item (default 10,5,2)")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=20, help="timed calls per cell")
    parser.add_argument("--mode", choices=("auto", "graphs", "compile", "eager"), default="auto")
    parser.add_argument("--dtype", choices=("auto", "bf16", "fp32"), default="auto")
    parser.add_argument("--onnx", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--no-tests", action="store_true", help="skip the tests marked cuda")
    parser.add_argument("--budget-s", type=float, default=450.0, help="stop starting new work after this")
    parser.add_argument("--quick", action="store_true", help="1 and 2 s, batch 1 and 2, 2 iterations")
    parser.add_argument("--out-dir", type=Path, default=Path("bench/gpu"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    durations = tuple(float(x) for x in args.durations.split(","))
    batches = tuple(int(x) for x in args.batches.split(","))
    iterations = args.iterations
    if args.quick:
        durations, batches, iterations = (2.0, 1.0), (1, 2), 2
    return GpuCheckConfig(
        device=args.device,
        preset=args.preset,
        durations_s=durations,
        batches=batches,
        steps=args.steps,
        iterations=iterations,
        mode=args.mode,
        dtype=args.dtype,
        tests=not args.no_tests,
        onnx=args.onnx,
        budget_s=args.budget_s,
        out_dir=args.out_dir,
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None) -> int:
    report = run(parse_args(argv))
    return 1 if report["cuda_tests"].get("status") in ("failed", "timeout") else 0


if __name__ == "__main__":
    raise SystemExit(main())

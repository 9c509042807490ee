"""`smalltts bench-server`: load-test the HTTP service on loopback, batched against unbatched, in one run.

    smalltts bench-server --preset tiny --concurrency 1,2,4 --requests-per-client 3     # CPU smoke test
    smalltts bench-server --preset full --concurrency 1,8 --out bench/server.json       # the README table

For each configuration (max_batch_size = --max-batch-size, then 1) it starts `smalltts serve` on a free
loopback port with the chosen model. Requests do not flatter: each one has its own voice (a reference clip of
its own pitch and length, so the service's voice cache never hits) and its own duration, drawn uniformly from
--lengths, with a text of matching length; a batch therefore pads to its longest item. Both servers are warmed
up at the shortest and the longest duration (warm-up per shape bucket), then, for each concurrency level and
each of --rounds rounds, both servers take turns: that many clients send POST /synthesize back to back until
each sent --requests-per-client requests or --max-seconds-per-level passed. Per level it reports the median
throughput over the rounds (audio seconds per wall second), latency p50/p90/p99 and RTF over every request,
the mean time per server stage (from /metrics), the mean batch size and errors; then the ratio of batched to
unbatched throughput. Results: a table on stdout, JSON at --out and a PNG chart beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf
from prometheus_client.parser import text_string_to_metric_families

from model.config import PRESETS
from model.runtime.assets import AssetError, ensure_random_model, resolve_model_dir
from smalltts.cli.bench_report import BarGroup, ChartPanel, describe_machine, load_average, summarize, write_bar_chart
from smalltts.cli.main import CliError
from smalltts.cli.model_option import add_model_argument

# Texts are cut from this passage, WORDS_PER_S words per second of the requested duration.
BENCH_WORDS = (
    "The quick brown fox jumps over the lazy dog, and then it takes a well earned rest beside the river. "
    "Later that evening the farmer counts his sheep twice, finds one missing, and walks out into the rain "
    "with a lantern, calling softly across the fields until the lost lamb answers from under the old oak tree."
).split()
WORDS_PER_S = 2.6
REFERENCE_RANGE_S = (3.0, 6.0)
DEFAULT_LEVELS = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class BenchConfig:
    model_dir: Path
    levels: tuple[int, ...] = DEFAULT_LEVELS
    requests_per_client: int = 4
    max_seconds_per_level: float = 120.0
    lengths_s: tuple[float, float] = (2.0, 8.0)  # each request's duration, drawn uniformly
    rounds: int = 1
    max_batch_size: int = 8
    max_wait_ms: float = 15.0
    baseline: bool = True
    startup_timeout_s: float = 600.0
    seed: int = 0


@dataclass
class LevelResult:
    concurrency: int
    rounds: int
    requests: int
    errors: int
    wall_s: float
    audio_s: float
    throughput_audio_s_per_s: float  # median over the rounds
    throughput_per_round: list[float]
    rtf_p50: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    mean_batch_size: float
    model_calls: int
    stage_mean_ms: dict[str, float]  # the server's own stage timings (/metrics), mean per observation


@dataclass
class RunResult:
    max_batch_size: int
    levels: list[LevelResult] = field(default_factory=list)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("bench-server", help="load-test the HTTP service (batched vs unbatched)")
    add_model_argument(parser)
    parser.add_argument("--preset", choices=PRESETS, default=None, help="a random-weight model of this preset")
    parser.add_argument("--concurrency", default=",".join(map(str, DEFAULT_LEVELS)), help="levels, e.g. 1,2,4,8,16")
    parser.add_argument("--requests-per-client", type=int, default=4, metavar="N")
    parser.add_argument("--max-seconds-per-level", type=float, default=120.0, metavar="S")
    parser.add_argument("--lengths", default="2-8", metavar="LOW-HIGH", help="seconds of speech per request, drawn")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per level; throughput is their median")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn durations and voices")
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=15.0)
    parser.add_argument("--no-baseline", action="store_true", help="skip the max_batch_size=1 run")
    parser.add_argument("--out", type=Path, default=Path("bench/server.json"), metavar="FILE")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        levels = tuple(sorted({int(part) for part in str(args.concurrency).split(",") if part.strip()}))
    except ValueError:
        raise CliError(f"--concurrency must be integers like 1,2,4, got {args.concurrency!r}") from None
    if not levels or min(levels) < 1:
        raise CliError("--concurrency needs levels >= 1")
    if args.requests_per_client < 1 or args.rounds < 1 or args.max_batch_size < 1:
        raise CliError("--requests-per-client, --rounds and --max-batch-size must be positive")
    low, _, high = str(args.lengths).partition("-")
    try:
        lengths_s = (float(low), float(high or low))
    except ValueError:
        raise CliError(f"--lengths must be LOW-HIGH in seconds, like 2-8, got {args.lengths!r}") from None
    if not 0 < lengths_s[0] <= lengths_s[1]:
        raise CliError(f"--lengths needs 0 < LOW <= HIGH, got {args.lengths!r}")
    try:
        model_dir = ensure_random_model(args.preset) if args.preset else resolve_model_dir(args.model)
    except AssetError as exc:
        raise CliError(str(exc)) from None
    config = BenchConfig(
        model_dir=model_dir,
        levels=levels,
        requests_per_client=args.requests_per_client,
        max_seconds_per_level=args.max_seconds_per_level,
        lengths_s=lengths_s,
        rounds=args.rounds,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        baseline=not args.no_baseline,
        seed=args.seed,
    )
    report = run_bench(config)
    sys.stdout.write(format_table(report) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    chart = args.out.with_suffix(".png")
    why_not = write_chart(report, chart)
    sys.stdout.write(f"wrote {args.out}" + (f" ({why_not})" if why_not else f" and {chart}") + "\n")
    return 0


Launcher = Callable[[BenchConfig, int], contextlib.AbstractContextManager[str]]


def run_bench(config: BenchConfig, launch: Launcher | None = None) -> dict[str, Any]:
    """Both configurations, every level; returns the JSON report.

    `launch(config, max_batch_size)` starts a server and yields its URL; default: `smalltts serve` in a
    subprocess (`served`). Both servers run at once and the levels alternate between them (batched, then
    unbatched, at each concurrency), so a slow drift in the machine's load hits both sides of the ratio alike.
    """
    launch = launch if launch is not None else served
    batch_sizes = [config.max_batch_size] + ([1] if config.baseline and config.max_batch_size != 1 else [])
    machine = describe_machine()
    with contextlib.ExitStack() as stack:
        urls = {size: stack.enter_context(launch(config, size)) for size in batch_sizes}
        model: dict[str, Any] = httpx.get(f"{urls[batch_sizes[0]]}/v1/config", timeout=30).json()
        started = time.perf_counter()
        runs = asyncio.run(_run_levels(urls, config))
    machine["load_average_1m_at_end"] = load_average()
    report: dict[str, Any] = {
        "model": {"dir": str(config.model_dir), "id": model.get("model_id"), "trained": model.get("trained")},
        "machine": machine,
        "config": {
            **{k: v for k, v in asdict(config).items() if k != "model_dir"},
            "words_per_s": WORDS_PER_S,
            "reference_range_s": list(REFERENCE_RANGE_S),
            "elapsed_s": round(time.perf_counter() - started, 1),
        },
        "runs": [asdict(r) for r in runs],
    }
    if len(runs) == 2:
        baseline = {level.concurrency: level for level in runs[1].levels}
        report["batched_over_unbatched"] = {
            str(level.concurrency): round(
                level.throughput_audio_s_per_s / max(baseline[level.concurrency].throughput_audio_s_per_s, 1e-9), 3
            )
            for level in runs[0].levels
            if level.concurrency in baseline
        }
    return report


# --- the server ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def served(config: BenchConfig, max_batch_size: int) -> Iterator[str]:
    """`smalltts serve` in a subprocess with one batching configuration; yields its URL once /ready is 200."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="smalltts-bench-") as scratch:
        env = {
            **os.environ,
            "SMALLTTS_MAX_BATCH_SIZE": str(max_batch_size),
            "SMALLTTS_MAX_WAIT_MS": str(config.max_wait_ms),
            "SMALLTTS_MAX_QUEUE_SIZE": str(max(64, 4 * max(config.levels))),
            "SMALLTTS_REQUEST_TIMEOUT_S": "3600",
            "SMALLTTS_DATA_DIR": str(Path(scratch) / "data"),
            "SMALLTTS_BUILTIN_VOICE": "false",
            "SMALLTTS_LOG_LEVEL": "warning",
            "SMALLTTS_PAYMENT__MODE": "off",
            "SMALLTTS_FRONTEND_DIR": str(Path(scratch) / "no-frontend"),
        }
        command = [
            sys.executable,
            "-m",
            "smalltts",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--model",
            str(config.model_dir),
        ]
        log_path = Path(scratch) / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            try:
                _wait_ready(url, process, config.startup_timeout_s, log_path)
                yield url
            finally:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=30)


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CliError(f"the server exited with status {process.returncode}: {_tail(log_path)}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise CliError(f"the server was not ready within {timeout_s:g} s: {_tail(log_path)}")


def _tail(path: Path, lines: int = 15) -> str:
    return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])


# --- the clients --------------------------------------------------------------------------------------


def reference_wav(seconds: float = 3.0, rate_hz: int = 24_000, pitch_hz: float = 140.0) -> bytes:
    """A harmonic tone with a tremolo: its pitch and length make it a voice of its own (a cache miss)."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    wave = sum(np.sin(2 * np.pi * pitch_hz * k * t) / k for k in range(1, 6)) * (1 + 0.4 * np.sin(2 * np.pi * 4 * t))
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * wave / np.abs(wave).max()).astype(np.float32), rate_hz, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def bench_text(duration_s: float, offset: int) -> str:
    """About WORDS_PER_S words a second of speech, cut from the passage at `offset` (wrapping around)."""
    count = max(2, round(duration_s * WORDS_PER_S))
    return " ".join(BENCH_WORDS[(offset + i) % len(BENCH_WORDS)] for i in range(count)) + "."


@dataclass(frozen=True)
class DrawnRequest:
    reference: bytes
    text: str
    duration_s: float
    seed: int


class RequestSource:
    """Draws requests: a duration from the range, a text to match and a voice no earlier request had."""

    def __init__(self, lengths_s: tuple[float, float], seed: int) -> None:
        self.lengths_s = lengths_s
        self.rng = np.random.default_rng(seed)
        self.drawn = 0

    def draw(self, duration_s: float | None = None) -> DrawnRequest:
        self.drawn += 1
        rng = self.rng
        duration_s = duration_s if duration_s is not None else float(rng.uniform(*self.lengths_s))
        # Pitches never repeat (the count moves them), so no two requests share a reference.
        pitch_hz = 90.0 + 0.37 * self.drawn + float(rng.uniform(0, 0.3))
        reference = reference_wav(float(rng.uniform(*REFERENCE_RANGE_S)), pitch_hz=pitch_hz)
        text = bench_text(duration_s, int(rng.integers(0, len(BENCH_WORDS))))
        return DrawnRequest(reference, text, round(duration_s, 2), int(rng.integers(0, 2**31)))


@dataclass
class _Sample:
    latency_s: float
    audio_s: float
    ok: bool


@dataclass
class _Round:
    samples: list[_Sample]
    wall_s: float
    batches: tuple[float, float]  # requests batched, model calls
    stages: dict[str, tuple[float, float]]  # stage -> (seconds, observations)


async def _run_levels(urls: dict[int, str], config: BenchConfig) -> list[RunResult]:
    source = RequestSource(config.lengths_s, config.seed)
    connections = max(config.levels) + 4
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    results = {size: RunResult(max_batch_size=size) for size in urls}
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            size: await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=3600, limits=limits))
            for size, url in urls.items()
        }
        warm = min(max(config.levels), config.max_batch_size)
        for client in clients.values():
            # Warm-up per shape bucket: a full batch at the shortest and at the longest duration, so thread pools
            # and memory arenas are sized before anything is timed.
            for duration_s in dict.fromkeys(config.lengths_s):
                await _level(client, functools.partial(source.draw, duration_s), config, concurrency=warm, count=1)
        for concurrency in config.levels:
            rounds: dict[int, list[_Round]] = {size: [] for size in clients}
            for round_index in range(config.rounds):
                # The same requests for both servers; which goes first alternates between rounds.
                drawn = [source.draw() for _ in range(concurrency * config.requests_per_client)]
                order = list(clients.items())
                if round_index % 2:
                    order.reverse()
                for size, client in order:
                    queue = iter(drawn)
                    before = await _counters(client)
                    started = time.perf_counter()
                    samples = await _level(
                        client, functools.partial(next, queue), config, concurrency, config.requests_per_client
                    )
                    wall_s = time.perf_counter() - started
                    after = await _counters(client)
                    rounds[size].append(_Round(samples, wall_s, *_difference(before, after)))
            for size, measured in rounds.items():
                results[size].levels.append(_summarize(concurrency, measured))
    return list(results.values())


async def _level(
    client: httpx.AsyncClient,
    next_request: Callable[[], DrawnRequest],
    config: BenchConfig,
    concurrency: int,
    count: int,
) -> list[_Sample]:
    deadline = time.perf_counter() + config.max_seconds_per_level
    samples: list[_Sample] = []

    async def one_client() -> None:
        for _ in range(count):
            if time.perf_counter() > deadline:
                return
            request = next_request()
            started = time.perf_counter()
            reply = await client.post(
                "/synthesize",
                params={"duration": request.duration_s, "seed": request.seed},
                files={"audio": ("reference.wav", request.reference, "audio/wav"), "text": (None, request.text)},
            )
            latency_s = time.perf_counter() - started
            ok = reply.status_code == 200
            audio_s = _audio_seconds(reply) if ok else 0.0
            samples.append(_Sample(latency_s=latency_s, audio_s=audio_s, ok=ok))

    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return samples


def _audio_seconds(reply: httpx.Response) -> float:
    info = sf.info(io.BytesIO(reply.content))
    return float(info.frames / info.samplerate)


_Counters = dict[str, float]


async def _counters(client: httpx.AsyncClient) -> _Counters:
    """The server's batch-size and stage histograms' sums and counts so far, by sample name and stage."""
    text = (await client.get("/metrics")).text
    counters: _Counters = {}
    for family in text_string_to_metric_families(text):
        if family.name not in ("smalltts_batch_size", "smalltts_stage_seconds"):
            continue
        for sample in family.samples:
            if sample.name.endswith(("_sum", "_count")):
                stage = sample.labels.get("stage")
                counters[f"{sample.name}:{stage}" if stage else sample.name] = sample.value
    return counters


def _difference(before: _Counters, after: _Counters) -> tuple[tuple[float, float], dict[str, tuple[float, float]]]:
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    batches = (delta("smalltts_batch_size_sum"), delta("smalltts_batch_size_count"))
    stages = {
        name.partition(":")[2]: (delta(name), delta(name.replace("_sum:", "_count:")))
        for name in after
        if name.startswith("smalltts_stage_seconds_sum:")
    }
    return batches, stages


def _summarize(concurrency: int, rounds: Sequence[_Round]) -> LevelResult:
    samples = [sample for measured in rounds for sample in measured.samples]
    good = [s for s in samples if s.ok]
    latency = summarize([s.latency_s * 1000 for s in good])
    throughputs = [sum(s.audio_s for s in r.samples if s.ok) / r.wall_s if r.wall_s > 0 else 0.0 for r in rounds]
    batched = sum(r.batches[0] for r in rounds)
    calls = sum(r.batches[1] for r in rounds)
    stage_totals: dict[str, list[float]] = {}
    for measured in rounds:
        for stage, (seconds, count) in measured.stages.items():
            totals = stage_totals.setdefault(stage, [0.0, 0.0])
            totals[0] += seconds
            totals[1] += count
    return LevelResult(
        concurrency=concurrency,
        rounds=len(rounds),
        requests=len(samples),
        errors=len(samples) - len(good),
        wall_s=round(sum(r.wall_s for r in rounds), 3),
        audio_s=round(sum(s.audio_s for s in good), 3),
        throughput_audio_s_per_s=round(float(np.median(throughputs)), 3) if throughputs else 0.0,
        throughput_per_round=[round(t, 3) for t in throughputs],
        rtf_p50=round(float(np.median([s.latency_s / s.audio_s for s in good])), 4) if good else math.nan,
        latency_p50_ms=round(latency.p50, 1),
        latency_p90_ms=round(latency.p90, 1),
        latency_p99_ms=round(latency.p99, 1),
        mean_batch_size=round(batched / calls, 2) if calls else 0.0,
        model_calls=int(calls),
        stage_mean_ms={
            stage: round(1000 * total / count, 1) for stage, (total, count) in stage_totals.items() if count
        },
    )


def format_table(report: dict[str, Any]) -> str:
    """A markdown table: one row per (max_batch_size, concurrency), plus the batched/unbatched ratio."""
    ratios: dict[str, float] = report.get("batched_over_unbatched", {})
    machine, config = report["machine"], report["config"]
    header = (
        "| max_batch_size | concurrency | requests | throughput (audio s / s) | RTF p50 | p50 ms | p90 ms | "
        "p99 ms | queue wait ms | inference ms | mean batch | batched / unbatched |"
    )
    low, high = config["lengths_s"]
    lines = [
        f"model {report['model']['id']} (trained: {report['model']['trained']}), {low:g}-{high:g} s per request "
        f"(a new voice each), {config['rounds']} round(s) per level; {machine['cpu']}, {machine['usable_cores']} "
        f"cores, onnxruntime {machine['onnxruntime']}, load average {machine['load_average_1m']} -> "
        f"{machine.get('load_average_1m_at_end')}",
        "",
        header,
        "|" + "|".join("---" for _ in range(12)) + "|",
    ]
    for index, run_result in enumerate(report["runs"]):
        for level in run_result["levels"]:
            ratio = ratios.get(str(level["concurrency"])) if index == 0 else None
            errors = f" ({level['errors']} errors)" if level["errors"] else ""
            stages = level["stage_mean_ms"]
            lines.append(
                f"| {run_result['max_batch_size']} | {level['concurrency']} | {level['requests']}{errors} | "
                f"{level['throughput_audio_s_per_s']:.2f} | {level['rtf_p50']:.3f} | {level['latency_p50_ms']:.0f} | "
                f"{level['latency_p90_ms']:.0f} | {level['latency_p99_ms']:.0f} | "
                f"{stages.get('queue_wait', math.nan):.0f} | {stages.get('inference', math.nan):.0f} | "
                f"{level['mean_batch_size']:.2f} | {f'{ratio:.2f}x' if ratio is not None else ''} |"
            )
    return "\n".join(lines)


def write_chart(report: dict[str, Any], path: Path) -> str | None:
    """Throughput and latency per concurrency level, batched beside unbatched; returns why not when skipped."""
    throughput: dict[int, BarGroup] = {}
    latency: dict[int, BarGroup] = {}
    for run_result in report["runs"]:
        name = f"max_batch_size {run_result['max_batch_size']}"
        for level in run_result["levels"]:
            c = level["concurrency"]
            throughput.setdefault(c, BarGroup(f"concurrency {c}", {})).values[name] = level["throughput_audio_s_per_s"]
            group = latency.setdefault(c, BarGroup(f"concurrency {c}", {}, {}))
            group.values[name] = level["latency_p50_ms"] / 1000
            assert group.whiskers is not None
            group.whiskers[name] = level["latency_p99_ms"] / 1000
    machine = report["machine"]
    return write_bar_chart(
        path,
        f"smalltts bench-server: {report['model']['id']}\n{machine['cpu']} ({machine['usable_cores']} cores, "
        f"load {machine['load_average_1m']}), onnxruntime {machine['onnxruntime']}",
        [
            ChartPanel("throughput (median over rounds)", "audio s per s", list(throughput.values())),
            ChartPanel("latency p50; whisker p99", "s", list(latency.values())),
        ],
    )

"""`smalltts bench-server`: load-test the HTTP service on loopback, batched against unbatched, in one run.

    smalltts bench-server --preset tiny --concurrency 1,2,4 --requests-per-client 3     # CPU smoke test
    smalltts bench-server --preset full --out bench/server.json                         # the README table

For each configuration (max_batch_size = --max-batch-size, then 1) it starts `smalltts serve` on a free
loopback port with the chosen model, warms it up, and for each concurrency level fires that many clients,
each sending POST /synthesize (multipart reference + text, fixed --duration) back to back, until every
client sent --requests-per-client requests or --max-seconds-per-level passed. Per level it reports throughput
(audio seconds per wall second), RTF (latency / audio length, median), p50/p90/p99 latency, the mean batch
size (from the server's /metrics) and errors; then the ratio of batched to unbatched throughput. Results
go to stdout as a table and to --out as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import platform
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
from smalltts.cli.main import CliError
from smalltts.cli.model_option import add_model_argument

BENCH_TEXT = "The quick brown fox jumps over the lazy dog, and then it takes a well earned rest."
DEFAULT_LEVELS = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class BenchConfig:
    model_dir: Path
    levels: tuple[int, ...] = DEFAULT_LEVELS
    requests_per_client: int = 4
    max_seconds_per_level: float = 120.0
    duration_s: float = 3.0
    max_batch_size: int = 8
    max_wait_ms: float = 15.0
    baseline: bool = True
    startup_timeout_s: float = 600.0


@dataclass
class LevelResult:
    concurrency: int
    requests: int
    errors: int
    wall_s: float
    audio_s: float
    throughput_audio_s_per_s: float
    rtf_p50: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    mean_batch_size: float
    model_calls: int


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
    parser.add_argument("--duration", type=float, default=3.0, metavar="S", help="seconds of speech per request")
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
    if args.requests_per_client < 1 or args.duration <= 0 or args.max_batch_size < 1:
        raise CliError("--requests-per-client, --duration and --max-batch-size must be positive")
    try:
        model_dir = ensure_random_model(args.preset) if args.preset else resolve_model_dir(args.model)
    except AssetError as exc:
        raise CliError(str(exc)) from None
    config = BenchConfig(
        model_dir=model_dir,
        levels=levels,
        requests_per_client=args.requests_per_client,
        max_seconds_per_level=args.max_seconds_per_level,
        duration_s=args.duration,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        baseline=not args.no_baseline,
    )
    report = run_bench(config)
    sys.stdout.write(format_table(report) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    sys.stdout.write(f"wrote {args.out}\n")
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
    with contextlib.ExitStack() as stack:
        urls = {size: stack.enter_context(launch(config, size)) for size in batch_sizes}
        model: dict[str, Any] = httpx.get(f"{urls[batch_sizes[0]]}/v1/config", timeout=30).json()
        runs = asyncio.run(_run_levels(urls, config))
    report: dict[str, Any] = {
        "model": {"dir": str(config.model_dir), "id": model.get("model_id"), "trained": model.get("trained")},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor()},
        "config": {**{k: v for k, v in asdict(config).items() if k != "model_dir"}, "text": BENCH_TEXT},
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


def reference_wav(seconds: float = 3.0, rate_hz: int = 24_000) -> bytes:
    """A harmonic tone with a tremolo; its content does not change the cost of a request."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    wave = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6)) * (1 + 0.4 * np.sin(2 * np.pi * 4 * t))
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * wave / np.abs(wave).max()).astype(np.float32), rate_hz, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@dataclass
class _Sample:
    latency_s: float
    audio_s: float
    ok: bool


async def _run_levels(urls: dict[int, str], config: BenchConfig) -> list[RunResult]:
    reference = reference_wav()
    connections = max(config.levels) + 4
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    results = {size: RunResult(max_batch_size=size) for size in urls}
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            size: await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=3600, limits=limits))
            for size, url in urls.items()
        }
        for client in clients.values():
            # Warm-up: first requests pay for thread pools, allocations and the reference cache.
            await _level(client, reference, config, concurrency=min(max(config.levels), config.max_batch_size), count=1)
        for concurrency in config.levels:
            for size, client in clients.items():
                before = await _batch_counters(client)
                started = time.perf_counter()
                samples = await _level(client, reference, config, concurrency, config.requests_per_client)
                wall_s = time.perf_counter() - started
                after = await _batch_counters(client)
                results[size].levels.append(_summarize(concurrency, samples, wall_s, before, after))
    return list(results.values())


async def _level(
    client: httpx.AsyncClient, reference: bytes, config: BenchConfig, concurrency: int, count: int
) -> list[_Sample]:
    deadline = time.perf_counter() + config.max_seconds_per_level
    samples: list[_Sample] = []

    async def one_client(index: int) -> None:
        for n in range(count):
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            reply = await client.post(
                "/synthesize",
                params={"duration": config.duration_s, "seed": index * 1000 + n},
                files={"audio": ("reference.wav", reference, "audio/wav"), "text": (None, BENCH_TEXT)},
            )
            latency_s = time.perf_counter() - started
            ok = reply.status_code == 200
            audio_s = _audio_seconds(reply) if ok else 0.0
            samples.append(_Sample(latency_s=latency_s, audio_s=audio_s, ok=ok))

    await asyncio.gather(*(one_client(i) for i in range(concurrency)))
    return samples


def _audio_seconds(reply: httpx.Response) -> float:
    info = sf.info(io.BytesIO(reply.content))
    return float(info.frames / info.samplerate)


async def _batch_counters(client: httpx.AsyncClient) -> tuple[float, float]:
    """(sum, count) of the server's batch-size histogram: requests batched and model calls so far."""
    text = (await client.get("/metrics")).text
    total = calls = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "smalltts_batch_size":
            for sample in family.samples:
                if sample.name == "smalltts_batch_size_sum":
                    total = sample.value
                elif sample.name == "smalltts_batch_size_count":
                    calls = sample.value
    return total, calls


def _summarize(
    concurrency: int, samples: Sequence[_Sample], wall_s: float, before: tuple[float, float], after: tuple[float, float]
) -> LevelResult:
    good = [s for s in samples if s.ok]
    latencies_ms = np.array([s.latency_s * 1000 for s in good]) if good else np.array([math.nan])
    audio_s = sum(s.audio_s for s in good)
    batched, calls = after[0] - before[0], after[1] - before[1]
    return LevelResult(
        concurrency=concurrency,
        requests=len(samples),
        errors=len(samples) - len(good),
        wall_s=round(wall_s, 3),
        audio_s=round(audio_s, 3),
        throughput_audio_s_per_s=round(audio_s / wall_s, 3) if wall_s > 0 else 0.0,
        rtf_p50=round(float(np.median([s.latency_s / s.audio_s for s in good])), 4) if good else math.nan,
        latency_p50_ms=round(float(np.percentile(latencies_ms, 50)), 1),
        latency_p90_ms=round(float(np.percentile(latencies_ms, 90)), 1),
        latency_p99_ms=round(float(np.percentile(latencies_ms, 99)), 1),
        mean_batch_size=round(batched / calls, 2) if calls else 0.0,
        model_calls=int(calls),
    )


def format_table(report: dict[str, Any]) -> str:
    """A markdown table: one row per (max_batch_size, concurrency), plus the batched/unbatched ratio."""
    ratios: dict[str, float] = report.get("batched_over_unbatched", {})
    header = (
        "| max_batch_size | concurrency | requests | throughput (audio s / s) | RTF p50 | p50 ms | p90 ms | "
        "p99 ms | mean batch | batched / unbatched |"
    )
    lines = [
        f"model {report['model']['id']} (trained: {report['model']['trained']}), "
        f"{report['config']['duration_s']:g} s per request, {report['machine']['cpus']} CPUs",
        "",
        header,
        "|" + "|".join("---" for _ in range(10)) + "|",
    ]
    for index, run_result in enumerate(report["runs"]):
        for level in run_result["levels"]:
            ratio = ratios.get(str(level["concurrency"])) if index == 0 else None
            errors = f" ({level['errors']} errors)" if level["errors"] else ""
            lines.append(
                f"| {run_result['max_batch_size']} | {level['concurrency']} | {level['requests']}{errors} | "
                f"{level['throughput_audio_s_per_s']:.2f} | {level['rtf_p50']:.3f} | {level['latency_p50_ms']:.0f} | "
                f"{level['latency_p90_ms']:.0f} | {level['latency_p99_ms']:.0f} | {level['mean_batch_size']:.2f} | "
                f"{f'{ratio:.2f}x' if ratio is not None else ''} |"
            )
    return "\n".join(lines)

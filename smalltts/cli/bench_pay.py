"""`smalltts bench-pay`: the latency that x402 payment adds to a request, measured on a local anvil chain.

    smalltts bench-pay --requests 20 --duration 1 --out bench/payment.json       # CPU: about a minute

Starts the dev chain (anvil + test token), then serves the same model twice on loopback: once free (payments
off) and once paid (local mode: in-process verification and settlement with web3). It sends the same
POST /synthesize back to back to each: free requests; paid requests whose payment was signed beforehand
(the service's added cost: verify -> handler -> settle); and the official x402 client's full flow (402,
sign, paid retry). The server-side time of verification and settlement is recorded per request. anvil
mines every transaction at once, so settlement here is RPC round trips only: on Base add a block (~2 s).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import numpy as np
import soundfile as sf
import uvicorn
from fastapi import FastAPI
from x402.http.clients.httpx import x402AsyncTransport
from x402.http.utils import decode_payment_required_header, encode_payment_signature_header

from service.app import create_app
from service.payment.client import SpeechOrder, build_payer, synthesize_paid
from service.payment.devchain.anvil import AnvilError, free_port
from service.payment.devchain.launch import DevChain, devchain_payment_settings, start_devchain
from service.payment.layer import PaymentLayer
from service.payment.settings import PaymentSettings
from service.settings import Settings
from smalltts.cli.main import CliError
from smalltts.cli.model_option import add_model_argument, open_synthesizer

T = TypeVar("T")
BENCH_TEXT = "A short sentence to price, verify, synthesize and settle."


@contextmanager
def running_server(app: FastAPI, startup_timeout_s: float = 120.0) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread on a free loopback port; yields its URL, stops it on exit."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="smalltts-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the service did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass(frozen=True)
class Summary:
    median_ms: float
    p90_ms: float
    count: int

    @classmethod
    def of(cls, samples_s: list[float]) -> Summary:
        ordered = sorted(samples_s)
        p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
        return cls(round(statistics.median(ordered) * 1000, 2), round(p90 * 1000, 2), len(ordered))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("bench-pay", help="measure the latency x402 payment adds (local anvil chain)")
    parser.add_argument("--requests", type=int, default=20, metavar="N", help="measured requests per case")
    parser.add_argument("--duration", type=float, default=1.0, metavar="S", help="seconds of speech per request")
    parser.add_argument("--out", type=Path, default=Path("bench/payment.json"), metavar="FILE", help="JSON results")
    add_model_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.requests < 2:
        raise CliError("--requests must be at least 2")
    synthesizer = open_synthesizer(args.model)
    reference = _tone_wav()
    try:
        with tempfile.TemporaryDirectory() as folder, start_devchain(None) as chain:
            results = _bench(chain, synthesizer, Path(folder), reference, args.requests, args.duration)
    except AnvilError as exc:
        raise CliError(f"cannot start the dev chain: {exc}") from None
    results["model_id"] = synthesizer.model_id
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(_table(results) + f"\nwrote {args.out}\n")
    return 0


def _bench(
    chain: DevChain, synthesizer: Any, folder: Path, reference: bytes, requests: int, duration_s: float
) -> dict[str, Any]:
    base = Settings(data_dir=folder / "data", frontend_dir=folder / "none", builtin_voice=False)
    free_settings = base.model_copy(update={"payment": PaymentSettings(mode="off")})
    paid_settings = base.model_copy(update={"payment": devchain_payment_settings(PaymentSettings(), chain, folder)})
    free_app = create_app(free_settings, synthesizers=[synthesizer])
    paid_app = create_app(paid_settings, synthesizers=[synthesizer])
    layer: PaymentLayer = paid_app.state.payment
    verify_s, settle_s = _time_calls(layer, "verify"), _time_calls(layer, "settle")
    payer = build_payer(chain.facts.payer_key, extra_asset=(chain.facts.network, chain.facts.token_address))
    params = {"duration": str(duration_s)}
    files: dict[str, tuple[str | None, bytes | str, str | None]] = {
        "text": (None, BENCH_TEXT, None),
        "audio": ("reference.wav", reference, "audio/wav"),
    }

    async def measure() -> dict[str, list[float]]:
        with running_server(free_app) as free_url, running_server(paid_app) as paid_url:
            async with (
                httpx.AsyncClient(timeout=120) as plain,
                httpx.AsyncClient(transport=x402AsyncTransport(payer), timeout=120) as paying,
            ):

                async def free() -> None:
                    _expect(await plain.post(f"{free_url}/synthesize", params=params, files=files), 200)

                async def presigned() -> float:
                    unpaid = await plain.post(f"{paid_url}/synthesize", params=params, files=files)
                    required = decode_payment_required_header(_expect(unpaid, 402).headers["PAYMENT-REQUIRED"])
                    header = encode_payment_signature_header(await payer.create_payment_payload(required))
                    started = time.perf_counter()
                    reply = await plain.post(
                        f"{paid_url}/synthesize", params=params, files=files, headers={"PAYMENT-SIGNATURE": header}
                    )
                    elapsed = time.perf_counter() - started
                    _expect(reply, 200)
                    return elapsed

                async def client_flow() -> None:
                    order = SpeechOrder(text=BENCH_TEXT, reference=reference, duration_s=None)
                    paid = await synthesize_paid(paying, paid_url, order)
                    if paid.audio is None:
                        raise CliError(f"paid request failed: {paid.status} {paid.error}")

                samples: dict[str, list[float]] = {"free_request": [], "paid_request_presigned": [], "client_flow": []}
                for _ in range(2):  # warm up both services and the chain connection
                    await free()
                    await presigned()
                verify_s.clear()
                settle_s.clear()
                for _ in range(requests):  # interleaved, so that drift hits every case alike
                    samples["free_request"].append(await _timed(free))
                    samples["paid_request_presigned"].append(await presigned())
                    samples["client_flow"].append(await _timed(client_flow))
                return samples

    samples = anyio.run(measure)
    summaries = {name: Summary.of(values) for name, values in samples.items()}
    summaries["server_verify"] = Summary.of(verify_s)
    summaries["server_settle"] = Summary.of(settle_s)
    added_ms = round(summaries["paid_request_presigned"].median_ms - summaries["free_request"].median_ms, 2)
    return {
        "requests": requests,
        "duration_s": duration_s,
        "chain": "anvil (automine), in-process verification and settlement (local mode), SQLite ledger",
        "summaries": {name: asdict(summary) for name, summary in summaries.items()},
        "added_latency_ms": added_ms,
    }


def _time_calls(layer: PaymentLayer, name: str) -> list[float]:
    """Record how long the layer's facilitator spends in `name` (verify or settle), per call."""
    samples: list[float] = []
    original: Callable[..., Awaitable[Any]] = getattr(layer.facilitator, name)

    async def timed(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args)
        finally:
            samples.append(time.perf_counter() - started)

    setattr(layer.facilitator, name, timed)  # the SDK's resource server calls the instance's method
    return samples


async def _timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


def _expect(reply: httpx.Response, status: int) -> httpx.Response:
    if reply.status_code != status:
        raise CliError(f"expected {status}, got {reply.status_code}: {reply.text[:200]}")
    return reply


def _tone_wav(seconds: float = 2.0, rate_hz: int = 24_000) -> bytes:
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    wave = 0.3 * np.sin(2 * np.pi * 150 * t) * (1 + 0.4 * np.sin(2 * np.pi * 4 * t))
    buffer = io.BytesIO()
    sf.write(buffer, wave.astype(np.float32), rate_hz, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _table(results: dict[str, Any]) -> str:
    lines = [f"{'case':<26} {'median ms':>10} {'p90 ms':>10} {'n':>4}"]
    for name, summary in results["summaries"].items():
        lines.append(f"{name:<26} {summary['median_ms']:>10.1f} {summary['p90_ms']:>10.1f} {summary['count']:>4}")
    lines.append(f"added by payment (paid presigned - free, medians): {results['added_latency_ms']:.1f} ms")
    return "\n".join(lines)

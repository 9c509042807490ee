"""`smalltts pay-say`: pay a running smalltts service with x402 and write the speech it returns.

    smalltts run                                                   # in another terminal: service + dev chain
    smalltts pay-say "Hello there." --out hello.flac               # the service's default voice, any folder
    smalltts pay-say "Hello there." --ref voice.wav --seed 7 --max-atomic 500000

It takes `say`'s defaults: no --ref or --voice means the service's built-in voice, no --duration an estimate,
no --seed a random one (printed), and the --out suffix picks the format the service answers in. Against
`smalltts run` the payer key and the test token come from the service itself (GET /v1/devchain, which only a
service on the dev chain it started answers), so it works from any folder. Against a real deployment pass
--url and the key in $SMALLTTS_PAYER_KEY (never on the command line of a shared machine):

    SMALLTTS_PAYER_KEY=0x... smalltts pay-say "Hello." --ref voice.wav --url https://tts.example.com

The price is asked first (GET /v1/price): above --max-atomic the command stops and says what it would cost.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import anyio
import httpx
from x402.http.clients.httpx import PaymentError, x402AsyncTransport

from model.runtime.audio import format_from_path
from service.payment.client import PaidSpeech, SpeechOrder, build_payer, synthesize_paid
from service.payment.devchain.launch import DevChainFacts
from smalltts.cli.main import CliError

PAYER_KEY_ENV = "SMALLTTS_PAYER_KEY"
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_OUT = Path("out/pay-say.wav")
DEFAULT_MAX_ATOMIC = 1_000_000  # 1 USDC: a cap the user raises on purpose
USDC_UNITS = Decimal(10**6)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("pay-say", help="pay a smalltts service with x402 and save the speech")
    parser.add_argument("text", metavar="TEXT", help="what to say ('-' reads it from stdin)")
    voice = parser.add_mutually_exclusive_group()
    voice.add_argument("--ref", type=Path, metavar="FILE", help="reference recording to clone")
    voice.add_argument("--voice", metavar="ID", help="a voice stored on the service (POST /v1/voices)")
    parser.add_argument("--duration", default=None, metavar="S", help="seconds; default: estimated (and priced)")
    parser.add_argument("--seed", type=int, default=None, metavar="N", help="noise seed (default: random, printed)")
    parser.add_argument("--steps", type=int, default=None, metavar="N", help="denoiser steps (default: the model's)")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"service URL (default {DEFAULT_URL})")
    parser.add_argument(
        "--devchain",
        type=Path,
        default=None,
        metavar="FILE",
        help="dev-chain facts file (a run's devchain.json); default: ask the service (GET /v1/devchain)",
    )
    parser.add_argument(
        "--max-atomic",
        type=int,
        default=DEFAULT_MAX_ATOMIC,
        metavar="N",
        help=f"refuse to pay more than N token units (default {DEFAULT_MAX_ATOMIC} = 1 USDC)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="FILE", help="output .wav, .flac or .ogg")
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class Quote:
    amount_atomic: int
    amount_usd: str
    duration_s: str


def run(args: argparse.Namespace) -> int:
    order = _order(args)
    url = args.url.rstrip("/")
    key, extra_asset = _payer(args, url)
    quote = _quote(url, order)
    if quote is not None and quote.amount_atomic > args.max_atomic:
        raise CliError(
            f"the service asks {quote.amount_atomic} units ({quote.amount_usd} USDC) for {quote.duration_s} s, "
            f"above --max-atomic {args.max_atomic}; pass --max-atomic {quote.amount_atomic} to pay it"
        )
    client = build_payer(key, extra_asset=extra_asset, max_amount_atomic=args.max_atomic)

    async def pay() -> PaidSpeech:
        async with httpx.AsyncClient(transport=x402AsyncTransport(client), timeout=300) as http:
            return await synthesize_paid(http, url, order)

    try:
        paid = anyio.run(pay)
    except PaymentError as exc:
        raise CliError(f"payment failed: {exc}") from None
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {url}: {exc}") from None
    receipt = paid.receipt or {}
    if paid.audio is None:
        tx = f" (transaction {receipt['transaction']})" if receipt.get("transaction") else ""
        raise CliError(f"the service answered {paid.status}: {paid.error}{tx}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(paid.audio)
    warnings = paid.headers.get("x-smalltts-warnings", "")
    for message in filter(None, (part.strip() for part in warnings.split(";"))):
        sys.stderr.write(f"smalltts: warning: {message}\n")
    if paid.headers.get("x-smalltts-trained") == "false":
        sys.stderr.write("smalltts: warning: the service's model is UNTRAINED (random weights): noise, not speech\n")
    amount = f"{quote.amount_usd} USDC ({quote.amount_atomic} units)" if quote else "the asked amount"
    sys.stdout.write(
        f"paid {amount} on {receipt.get('network')} from {receipt.get('payer')}, "
        f"transaction {receipt.get('transaction')}\n"
        f"wrote {args.out}: {paid.duration_s} s, seed {paid.headers.get('x-smalltts-seed', order.seed)}\n"
    )
    return 0


def _order(args: argparse.Namespace) -> SpeechOrder:
    audio_format = format_from_path(args.out)  # a suffix we cannot write fails before anything is paid
    if args.max_atomic < 0:
        raise CliError(f"--max-atomic must be >= 0 token units, got {args.max_atomic}")
    duration_s = None
    if args.duration is not None:
        try:
            duration_s = Decimal(args.duration)
        except InvalidOperation:
            raise CliError(f"--duration must be a number of seconds, got {args.duration!r}") from None
    reference = None
    if args.ref is not None:
        if not args.ref.is_file():
            raise CliError(f"reference file not found: {args.ref}")
        reference = args.ref.read_bytes()
    text = sys.stdin.read() if args.text == "-" else args.text
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)  # as `say` draws and prints it
    return SpeechOrder(
        text=text,
        reference=reference,
        voice=args.voice,
        duration_s=duration_s,
        seed=seed,
        steps=args.steps,
        audio_format=audio_format,
    )


def _payer(args: argparse.Namespace, url: str) -> tuple[str, tuple[str, str] | None]:
    """The key to pay with and, on the dev chain, its test token (not a default asset of the client)."""
    key = os.environ.get(PAYER_KEY_ENV)
    if args.devchain is not None:
        if not args.devchain.is_file():
            raise CliError(f"dev-chain facts not found: {args.devchain}")
        facts = DevChainFacts.read(args.devchain)
        return key or facts.payer_key, (facts.network, facts.token_address)
    served = _get_json(url, "/v1/devchain", {})
    if served is not None:
        facts = DevChainFacts(**served)  # the same type as a run's devchain.json
        return key or facts.payer_key, (facts.network, facts.token_address)
    if not key:
        raise CliError(
            f"no payer key: set ${PAYER_KEY_ENV} ({url} is not a `smalltts run` on its own dev chain, "
            "which would lend its dev payer)"
        )
    return key, None


def _quote(url: str, order: SpeechOrder) -> Quote | None:
    """What the 402 will ask (GET /v1/price), or None from a service without the route (payments off)."""
    params: dict[str, str] = {"text": order.text}
    if order.duration_s is not None:
        params = {"duration": str(order.duration_s)}
    if order.steps is not None:
        params["steps"] = str(order.steps)
    body = _get_json(url, "/v1/price", params)
    if body is None:
        return None
    return Quote(int(body["amount_atomic"]), str(body["amount_usd"]), str(body["duration_s"]))


def _get_json(url: str, path: str, params: dict[str, str]) -> dict[str, Any] | None:
    """A GET answered with JSON; None on 404 (the route is not there), one CLI line on anything else."""
    try:
        reply = httpx.get(f"{url}{path}", params=params, timeout=30)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {url}: {exc}") from None
    if reply.status_code == 404:
        return None
    if reply.status_code != 200:
        try:
            error = reply.json().get("error", {})
            detail = f"{error.get('code')}: {error.get('message')}"
        except (ValueError, AttributeError):
            detail = reply.text[:200]
        raise CliError(f"{path} answered {reply.status_code}: {detail}")
    body: dict[str, Any] = reply.json()
    return body

"""`smalltts pay-say`: pay a running smalltts service with x402 and write the speech it returns.

    smalltts run                                                   # in another terminal: service + dev chain
    smalltts pay-say "Hello there." --ref voice.wav --out hello.wav

Against `smalltts run`, the payer key and the test token come from .smalltts/devchain.json. Against a real
deployment pass --url and the key in $SMALLTTS_PAYER_KEY (never on the command line of a shared machine):

    SMALLTTS_PAYER_KEY=0x... smalltts pay-say "Hello." --ref voice.wav --url https://tts.example.com
"""

from __future__ import annotations

import argparse
import os
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import anyio
import httpx
from x402.http.clients.httpx import PaymentError, x402AsyncTransport

from service.payment.client import PaidSpeech, SpeechOrder, build_payer, synthesize_paid
from service.payment.devchain.launch import FACTS_FILE, STATE_DIR, DevChainFacts
from smalltts.cli.main import CliError

PAYER_KEY_ENV = "SMALLTTS_PAYER_KEY"
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_OUT = Path("out/pay-say.wav")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("pay-say", help="pay a smalltts service with x402 and save the speech")
    parser.add_argument("text", metavar="TEXT", help="what to say")
    voice = parser.add_mutually_exclusive_group(required=True)
    voice.add_argument("--ref", type=Path, metavar="FILE", help="reference recording to clone")
    voice.add_argument("--voice", metavar="ID", help="a voice stored on the service (POST /v1/voices)")
    parser.add_argument("--duration", default=None, metavar="S", help="seconds; default: estimated (and priced)")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"service URL (default {DEFAULT_URL})")
    parser.add_argument(
        "--devchain",
        type=Path,
        default=STATE_DIR / FACTS_FILE,
        metavar="FILE",
        help="dev-chain facts written by `smalltts run` (payer key, test token); used when present",
    )
    parser.add_argument(
        "--max-atomic", type=int, default=1_000_000, metavar="N", help="refuse to pay more than N token units"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="FILE", help="where to write the audio")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    order = _order(args)
    key, extra_asset = _payer(args)
    client = build_payer(key, extra_asset=extra_asset, max_amount_atomic=args.max_atomic)

    async def pay() -> PaidSpeech:
        async with httpx.AsyncClient(transport=x402AsyncTransport(client), timeout=300) as http:
            return await synthesize_paid(http, args.url, order)

    try:
        paid = anyio.run(pay)
    except PaymentError as exc:
        raise CliError(f"payment failed: {exc}") from None
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {args.url}: {exc}") from None
    receipt = paid.receipt or {}
    if paid.audio is None:
        tx = f" (transaction {receipt['transaction']})" if receipt.get("transaction") else ""
        raise CliError(f"the service answered {paid.status}: {paid.error}{tx}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(paid.audio)
    sys.stdout.write(
        f"paid on {receipt.get('network')} by {receipt.get('payer')}, transaction {receipt.get('transaction')}\n"
        f"wrote {args.out} ({paid.duration_s} s of speech)\n"
    )
    return 0


def _order(args: argparse.Namespace) -> SpeechOrder:
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
    return SpeechOrder(text=args.text, reference=reference, voice=args.voice, duration_s=duration_s)


def _payer(args: argparse.Namespace) -> tuple[str, tuple[str, str] | None]:
    """The key to pay with and, on the dev chain, its test token (not a default asset of the client)."""
    key = os.environ.get(PAYER_KEY_ENV)
    if args.devchain.is_file():
        facts = DevChainFacts.read(args.devchain)
        return key or facts.payer_key, (facts.network, facts.token_address)
    if not key:
        raise CliError(f"no payer key: set ${PAYER_KEY_ENV}, or start `smalltts run` to get {args.devchain}")
    return key, None

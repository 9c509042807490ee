"""Paying for speech with the official x402 httpx client: what `smalltts pay-say` and `smalltts bench-pay` use.

    client = build_payer(private_key, extra_asset=(network, token))   # the dev chain's token is not a default
    async with httpx.AsyncClient(transport=x402AsyncTransport(client), timeout=120) as http:
        reply = await synthesize_paid(http, "http://127.0.0.1:8000", SpeechOrder(text="Hello.", reference=wav))

A 402 becomes: sign the exact requirement (EIP-3009, with the payer's key) -> repeat the request with
PAYMENT-SIGNATURE -> 200 with the audio and the receipt in PAYMENT-RESPONSE.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from eth_account import Account
from x402 import x402Client
from x402.client_base import SpendControlAsset, SpendControls
from x402.http.utils import decode_payment_response_header
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner


@dataclass(frozen=True)
class SpeechOrder:
    text: str
    reference: bytes | None = None  # a reference recording; or
    voice: str | None = None  # a stored voice id
    duration_s: Decimal | None = None  # None: the service estimates it from the text (and prices that)
    seed: int | None = None  # None: the service draws one (and reports it in X-Smalltts-Seed)
    steps: int | None = None  # None: the model's own
    audio_format: str = "wav"  # the container the service answers in (wav, flac, ogg)


@dataclass(frozen=True)
class PaidSpeech:
    status: int
    audio: bytes | None
    receipt: dict[str, Any] | None  # the decoded PAYMENT-RESPONSE
    error: str | None  # the service's error code or message when there is no audio
    duration_s: str | None  # the duration the service synthesized (X-Smalltts-Duration-S)
    headers: dict[str, str]  # the X-Smalltts-* headers of the answer (seed, warnings, ...), lower-cased names


def build_payer(
    private_key: str, *, extra_asset: tuple[str, str] | None = None, max_amount_atomic: int | None = None
) -> x402Client:
    """An x402 client paying with `private_key` on any EVM network.

    `extra_asset` = (CAIP-2 network, token address) allows one non-default token (the dev chain's test USDC);
    real USDC is a default asset and allowed as is. `max_amount_atomic` caps one payment in that token.
    """
    client = x402Client()
    register_exact_evm_client(client, EthAccountSigner(Account.from_key(private_key)))
    if extra_asset is not None:
        entry = SpendControlAsset(network=extra_asset[0], asset=extra_asset[1])
        if max_amount_atomic is not None:
            entry["max_amount_per_payment"] = str(max_amount_atomic)
        client.set_spend_controls(SpendControls(allowed_assets=[entry]))
    return client


async def synthesize_paid(http: httpx.AsyncClient, url: str, order: SpeechOrder) -> PaidSpeech:
    """POST /synthesize through a paying transport and unpack the answer."""
    params = {"duration": str(order.duration_s)} if order.duration_s is not None else {}
    if order.voice is not None:
        params["voice"] = order.voice
    if order.seed is not None:
        params["seed"] = str(order.seed)
    if order.steps is not None:
        params["steps"] = str(order.steps)
    if order.audio_format != "wav":
        params["format"] = order.audio_format
    files: dict[str, Any] = {"text": (None, order.text)}
    if order.reference is not None:
        files["audio"] = ("reference.wav", order.reference, "application/octet-stream")
    reply = await http.post(f"{url.rstrip('/')}/synthesize", params=params, files=files)
    encoded = reply.headers.get("PAYMENT-RESPONSE")
    receipt = decode_payment_response_header(encoded).model_dump(by_alias=True) if encoded else None
    headers = {name.lower(): value for name, value in reply.headers.items() if name.lower().startswith("x-smalltts-")}
    if reply.status_code == 200:
        return PaidSpeech(200, reply.content, receipt, None, reply.headers.get("X-Smalltts-Duration-S"), headers)
    return PaidSpeech(reply.status_code, None, receipt, _error_text(reply), None, headers)


def _error_text(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return f"{error.get('code')}: {error.get('message')}"
    message = body.get("message") if isinstance(body, dict) else None
    return f"{error}: {message}" if message else str(error or body)

"""The payment header at the edge, with no chain: one v2 PAYMENT-SIGNATURE header is left on the scope, junk is
400 `invalid_payload`, and x402 v1 is re-wrapped as v2 for this request's own requirement (or refused)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from starlette.types import Message, Scope
from x402.http.utils import decode_payment_signature_header, encode_payment_signature_header
from x402.schemas import ResourceInfo

from service.payment.attempt import PaymentAttempt
from service.payment.header import normalize_payment_header
from service.payment.networks import NETWORKS, PaymentTerms
from service.payment.wire import Responder
from tests.service.payment.test_facilitator import PAY_TO, TOKEN, _attempt, _payload, _requirements

pytestmark = pytest.mark.anyio

TERMS = PaymentTerms(
    network=NETWORKS["base-sepolia"], asset=TOKEN, token_name="USDC", token_version="2", pay_to=PAY_TO,
    max_timeout_s=300,
)  # fmt: skip
RESOURCE = ResourceInfo(url="http://test/synthesize", description="speech", mime_type="audio/wav")


def _scope(**headers: str) -> Scope:
    raw = [(name.replace("_", "-").lower().encode(), value.encode()) for name, value in headers.items()]
    return {"type": "http", "method": "POST", "path": "/synthesize", "headers": raw}


def _v1_header(network: str = "base-sepolia", scheme: str = "exact") -> str:
    body = {"x402Version": 1, "scheme": scheme, "network": network, "payload": _payload().payload}
    return base64.b64encode(json.dumps(body).encode()).decode()


def _normalize(scope: Scope, attempt: PaymentAttempt, *, accept_v1: bool = True) -> Responder | None:
    return normalize_payment_header(scope, [_requirements()], RESOURCE, attempt, terms=TERMS, accept_v1=accept_v1)


async def _answer(responder: Responder) -> tuple[int, dict[str, Any]]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    await responder(_scope(), receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_a_v2_header_is_kept_and_its_authorization_read() -> None:
    payload, attempt = _payload(), _attempt()
    scope = _scope(payment_signature=encode_payment_signature_header(payload))
    assert _normalize(scope, attempt) is None
    [(name, value)] = scope["headers"]
    assert name == b"payment-signature"
    assert decode_payment_signature_header(value.decode()).payload == payload.payload
    assert attempt.authorization is not None
    assert attempt.authorization.nonce == payload.payload["authorization"]["nonce"]
    assert (attempt.protocol, attempt.legacy_header, attempt.header_digest is not None) == (2, False, True)


@pytest.mark.parametrize(
    "headers",
    [
        {"payment_signature": "not base64!"},
        {"payment_signature": base64.b64encode(b"[1, 2]").decode()},
        {"payment_signature": base64.b64encode(b'{"x402Version": 3}').decode()},
        {"payment_signature": "e30=", "x_payment": "e30="},
    ],
    ids=["not-base64", "not-an-object", "unknown-version", "both-headers"],
)
async def test_junk_is_refused_with_400(headers: dict[str, str]) -> None:
    responder = _normalize(_scope(**headers), _attempt())
    assert responder is not None
    status, body = await _answer(responder)
    assert (status, body["error"]["code"]) == (400, "invalid_payload")


def test_a_v1_header_is_rewrapped_as_v2_for_this_requests_requirement() -> None:
    attempt = _attempt()
    scope = _scope(x_payment=_v1_header())
    assert _normalize(scope, attempt) is None
    [(name, value)] = scope["headers"]
    rewritten = decode_payment_signature_header(value.decode())
    assert (name, rewritten.x402_version, rewritten.accepted) == (b"payment-signature", 2, _requirements())
    assert (attempt.protocol, attempt.legacy_header) == (1, True)


@pytest.mark.parametrize(
    ("header", "accept_v1", "code"),
    [
        (_v1_header(), False, "invalid_x402_version"),
        (_v1_header(network="base"), True, "invalid_network"),
        (_v1_header(scheme="upto"), True, "unsupported_scheme"),
    ],
    ids=["v1-off", "other-network", "other-scheme"],
)
async def test_a_v1_header_this_service_cannot_take_gets_402(header: str, accept_v1: bool, code: str) -> None:
    attempt = _attempt()
    responder = _normalize(_scope(x_payment=header), attempt, accept_v1=accept_v1)
    assert responder is not None
    status, body = await _answer(responder)
    assert (status, body["x402Version"], body["error"]) == (402, 1, code)
    assert body["accepts"][0]["payTo"] == PAY_TO and attempt.reject_message == body["message"]

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.types import Message
from x402.http.utils import encode_payment_required_header, encode_payment_response_header
from x402.schemas import PaymentRequired, SettleResponse

from service.payment.attempt import PaymentAttempt
from service.payment.refusal import UNAVAILABLE_RETRY_AFTER_S, rate_limited, refusal_messages
from service.payment.vault import AudioVault
from service.payment.verdict import ERR_PAYMENT_UNAVAILABLE, ERR_RATE_LIMITED
from tests.service.payment.test_facilitator import PAYER, _attempt, _requirements
from tests.service.payment.test_header import RESOURCE, TERMS


def _sdk_402(**headers: str) -> Message:
    raw = [(name.encode(), value.encode()) for name, value in headers.items()]
    return {"type": "http.response.start", "status": 402, "headers": raw}


def _refuse(start: Message, attempt: PaymentAttempt) -> tuple[int, dict[bytes, bytes], dict[str, Any]]:
    head, body = refusal_messages(start, attempt, [_requirements()], RESOURCE, vault=AudioVault(), terms=TERMS)
    return head["status"], dict(head["headers"]), json.loads(body["body"])


def _required(error: str) -> str:
    return encode_payment_required_header(
        PaymentRequired(x402_version=2, error=error, resource=RESOURCE, accepts=[_requirements()])
    )


def test_a_request_without_payment_gets_the_v1_body_with_a_reason() -> None:
    status, headers, body = _refuse(_sdk_402(), _attempt())
    assert status == 402
    assert headers[b"cache-control"] == b"no-store"
    assert (body["x402Version"], body["error"]) == (1, "payment_required")
    assert body["accepts"][0]["network"] == TERMS.network.v1_name
    assert body["accepts"][0]["maxAmountRequired"] == "334"
    assert "PAYMENT-SIGNATURE" in body["message"]


@pytest.mark.parametrize(
    ("sdk_error", "code"),
    [
        ("No matching payment requirements", "payment_requirements_mismatch"),
        ("invalid_exact_evm_insufficient_balance", "invalid_exact_evm_insufficient_balance"),
        ("A sentence the SDK made up", "payment_rejected"),  # never echoed as a code
    ],
)
def test_the_sdks_reason_becomes_a_stable_code(sdk_error: str, code: str) -> None:
    status, headers, body = _refuse(_sdk_402(**{"payment-required": _required(sdk_error)}), _attempt())
    assert (status, body["error"]) == (402, code)
    assert b"payment-required" in headers


def test_a_failed_settlement_is_402_with_its_receipt_in_both_header_spellings_for_v1_clients() -> None:
    receipt = encode_payment_response_header(
        SettleResponse(success=False, error_reason=None, transaction="", network="eip155:84532", payer=PAYER)
    )
    attempt = _attempt()
    attempt.legacy_header = True
    status, headers, body = _refuse(_sdk_402(**{"payment-response": receipt}), attempt)
    assert (status, body["error"]) == (402, "settlement_failed")
    assert headers[b"payment-response"] == receipt.encode()
    assert b"x-payment-response" in headers


def test_an_outage_is_503_never_a_bad_payment() -> None:
    attempt = _attempt()
    attempt.note_unavailable("the payment network's RPC failed")
    status, headers, body = _refuse(_sdk_402(), attempt)
    assert status == 503
    assert headers[b"retry-after"] == str(UNAVAILABLE_RETRY_AFTER_S).encode()
    assert body["error"]["code"] == ERR_PAYMENT_UNAVAILABLE
    assert "nothing was charged" in body["error"]["message"]


def test_a_rate_limited_attempt_is_429_with_retry_after() -> None:
    attempt = _attempt()
    attempt.retry_after_s = 7.6
    status, headers, body = _refuse(_sdk_402(), attempt)
    assert (status, headers[b"retry-after"]) == (429, b"7")
    assert body["error"]["code"] == ERR_RATE_LIMITED


def test_an_unknown_settlement_outcome_is_504() -> None:
    attempt = _attempt()
    attempt.settle_sent = True
    status, _, _ = _refuse(_sdk_402(), attempt)
    assert status == 504


@pytest.mark.anyio
async def test_rate_limited_is_a_ready_asgi_answer() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    await rate_limited(3.0, "slow down")({"type": "http"}, receive, send)
    assert sent[0]["status"] == 429
    assert json.loads(sent[1]["body"])["error"] == {"code": ERR_RATE_LIMITED, "message": "slow down", "field": None}

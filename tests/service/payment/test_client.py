from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from x402.http.utils import encode_payment_response_header
from x402.schemas import SettleResponse

from service.payment.client import PaidSpeech, SpeechOrder, synthesize_paid

pytestmark = pytest.mark.anyio

RECEIPT = encode_payment_response_header(
    SettleResponse(success=True, transaction="0x" + "ab" * 32, network="eip155:84532", payer="0x" + "cd" * 20)
)


async def _order(order: SpeechOrder, reply: httpx.Response) -> tuple[httpx.Request, PaidSpeech]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return reply

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        paid = await synthesize_paid(http, "http://service/", order)
    return seen[0], paid


async def test_the_order_becomes_the_synthesize_request_and_the_audio_comes_back_with_its_receipt() -> None:
    order = SpeechOrder(text="Hello.", reference=b"RIFF", duration_s=Decimal("2.5"), seed=7, audio_format="flac")
    headers = {"PAYMENT-RESPONSE": RECEIPT, "X-Smalltts-Duration-S": "2.5", "X-Smalltts-Seed": "7", "Other": "x"}
    request, paid = await _order(order, httpx.Response(200, content=b"fLaC", headers=headers))
    assert (request.method, request.url.path) == ("POST", "/synthesize")
    assert dict(request.url.params) == {"duration": "2.5", "seed": "7", "format": "flac"}
    assert b'name="text"\r\n\r\nHello.' in request.content and b'filename="reference.wav"' in request.content
    assert (paid.status, paid.audio, paid.duration_s, paid.error) == (200, b"fLaC", "2.5", None)
    assert paid.receipt is not None and paid.receipt["transaction"] == "0x" + "ab" * 32
    assert paid.headers == {"x-smalltts-duration-s": "2.5", "x-smalltts-seed": "7"}


async def test_a_stored_voice_is_named_and_no_upload_is_sent() -> None:
    request, _ = await _order(SpeechOrder(text="Hi.", voice="default", steps=2), httpx.Response(200, content=b""))
    assert dict(request.url.params) == {"voice": "default", "steps": "2"}
    assert b"filename=" not in request.content


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (httpx.Response(422, json={"error": {"code": "text_empty", "message": "no text"}}), "text_empty: no text"),
        (
            httpx.Response(402, json={"x402Version": 1, "error": "payment_required", "message": "pay"}),
            "payment_required: pay",
        ),
        (httpx.Response(402, json={"error": "insufficient_funds"}), "insufficient_funds"),
        (httpx.Response(502, text="Bad gateway"), "Bad gateway"),
    ],
)
async def test_a_refusal_has_no_audio_and_says_why(reply: httpx.Response, error: str) -> None:
    _, paid = await _order(SpeechOrder(text="Hi."), reply)
    assert (paid.status, paid.audio, paid.error, paid.duration_s) == (reply.status_code, None, error, None)

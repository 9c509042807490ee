from __future__ import annotations

import json

import pytest
from x402.mechanisms.evm.constants import ERR_SETTLEMENT_PENDING
from x402.schemas import SettleResponse

from service.payment.attempt import PaymentAttempt
from service.payment.authorization import Authorization
from service.payment.held import (
    OUTCOME_UNKNOWN_RETRY_S,
    hold_answer,
    outcome_is_unknown,
    outcome_unknown_messages,
)
from service.payment.vault import AudioVault
from service.payment.verdict import ERR_SETTLEMENT_UNKNOWN

PAYER = "0x" + "ab" * 20


def _attempt(**fields: object) -> PaymentAttempt:
    return PaymentAttempt(request_id="r1", route="POST /synthesize", duration_s="2", protocol=2, **fields)  # type: ignore[arg-type]


def _settled(success: bool, reason: str | None = None) -> SettleResponse:
    return SettleResponse(success=success, error_reason=reason, transaction="", network="eip155:84532", payer=PAYER)


@pytest.mark.parametrize(
    ("fields", "unknown"),
    [
        ({}, False),  # settlement never asked for: nothing can have moved
        ({"settle_sent": False, "unavailable": "rpc down"}, False),
        ({"settle_sent": True}, True),  # asked, and no answer came back
        ({"settle_sent": True, "settlement": _settled(True)}, False),
        ({"settle_sent": True, "settlement": _settled(False, "invalid_exact_evm_payload_signature")}, False),
        ({"settle_sent": True, "settlement": _settled(False, ERR_SETTLEMENT_PENDING)}, True),
        ({"settle_sent": True, "settlement": _settled(False, ERR_SETTLEMENT_UNKNOWN)}, True),
        ({"settle_sent": True, "settlement": _settled(False, "anything"), "unavailable": "rpc failed"}, True),
        ({"settle_sent": True, "settlement": _settled(True), "unavailable": "rpc failed later"}, False),
    ],
)
def test_outcome_is_unknown_only_once_settlement_was_sent_without_a_verdict(
    fields: dict[str, object], unknown: bool
) -> None:
    assert outcome_is_unknown(_attempt(**fields)) is unknown


def test_outcome_unknown_answer_is_504_with_retry_after_and_the_receipt() -> None:
    start, body = outcome_unknown_messages("receipt")
    headers = dict(start["headers"])
    assert start["status"] == 504
    assert headers[b"retry-after"] == str(OUTCOME_UNKNOWN_RETRY_S).encode()
    assert headers[b"payment-response"] == b"receipt"
    assert json.loads(body["body"])["error"]["code"] == ERR_SETTLEMENT_UNKNOWN
    assert b"payment-response" not in dict(outcome_unknown_messages(None)[0]["headers"])


def test_hold_answer_keeps_the_captured_audio_under_the_header_that_paid() -> None:
    vault = AudioVault(clock=lambda: 0.0)
    authorization = Authorization(
        payer=PAYER, to="0x" + "cd" * 20, value=1, valid_after=0, valid_before=1000, nonce="0x01", signature="", raw={}
    )
    answer = (200, [(b"content-type", b"audio/wav")], b"RIFF")
    hold_answer(vault, _attempt(authorization=authorization, header_digest="d1"))  # nothing captured: nothing held
    assert len(vault) == 0
    hold_answer(vault, _attempt(authorization=authorization, header_digest="d1", captured=answer))
    held = vault.get(PAYER, "0x01", "d1")
    assert held is not None and (held.status, held.body) == (200, b"RIFF")

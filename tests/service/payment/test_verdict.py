"""What clients may read of a verdict: snake_case reason codes only, a settlement's tx hash only when it is one,
and outages (RPC, facilitator, ledger) named in our words."""

from __future__ import annotations

import pytest
from x402.schemas import SettleResponse, VerifyResponse

from service.payment.chain import ChainUnavailableError
from service.payment.inner import MESSAGE_FACILITATOR_UNREACHABLE, FacilitatorUnavailableError
from service.payment.ledger import LedgerError
from service.payment.verdict import (
    NO_VERDICT_ERRORS,
    UNAVAILABLE_ERRORS,
    clean_settle,
    clean_verify,
    reason_code,
    unavailable_message,
)

TX_HASH = "0x" + "ab" * 32


@pytest.mark.parametrize(
    ("reason", "code"),
    [("invalid_exact_evm_nonce_already_used", "invalid_exact_evm_nonce_already_used"), (None, "fallback"),
     ("RPC https://rpc.example/KEY failed", "fallback"), ("x" * 81, "fallback")],
)  # fmt: skip
def test_only_snake_case_codes_reach_clients(reason: str | None, code: str) -> None:
    assert reason_code(reason, "fallback") == code


def test_the_sdks_free_text_is_dropped_from_verdicts() -> None:
    refused = VerifyResponse(is_valid=False, invalid_reason="Bad thing at https://rpc/KEY", invalid_message="text")
    assert clean_verify(refused) == VerifyResponse(is_valid=False, invalid_reason="payment_rejected")
    settled = SettleResponse(success=True, transaction=TX_HASH, network="eip155:84532", error_message="x")
    assert clean_settle(settled).error_message is None and clean_settle(settled).transaction == TX_HASH
    failed = SettleResponse(success=False, error_reason="boom!", transaction="not a hash", network="eip155:84532")
    assert (clean_settle(failed).error_reason, clean_settle(failed).transaction) == ("settlement_failed", "")


def test_outages_are_no_verdict_and_are_named_in_our_words() -> None:
    for error in (ChainUnavailableError("https://rpc/KEY down"), FacilitatorUnavailableError("x"), LedgerError("x")):
        assert isinstance(error, UNAVAILABLE_ERRORS) and isinstance(error, NO_VERDICT_ERRORS)
        assert "KEY" not in unavailable_message(error)
    assert unavailable_message(FacilitatorUnavailableError("x")) == MESSAGE_FACILITATOR_UNREACHABLE
    assert isinstance(TimeoutError(), NO_VERDICT_ERRORS)

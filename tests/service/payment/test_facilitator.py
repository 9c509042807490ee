"""The facilitator adapter, unit tests with a FakeFacilitator (validity window, reservation before verification,
one inner call for concurrent copies, outages reported as such, settlement records). The faults on a real chain
are in test_faults.py, the review's checks in test_guard.py."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse, SupportedResponse, VerifyResponse

from service.payment.attempt import PaymentAttempt, current_attempt
from service.payment.authorization import ValidityPolicy, parse_authorization
from service.payment.chain import PayerFunds
from service.payment.facilitator import GuardedFacilitator
from service.payment.ledger import Ledger
from service.payment.verdict import ERR_PAYMENT_UNAVAILABLE
from tests.service.payment.support import (
    sign_authorization,
)

pytestmark = pytest.mark.anyio

PAYER_KEY = "0x" + "a1" * 32
PAYER = Account.from_key(PAYER_KEY).address.lower()
PAY_TO = "0x" + "bb" * 20
TOKEN = "0x" + "cc" * 20
POLICY = ValidityPolicy(min_validity_s=150, max_timeout_s=300, slack_s=30)


class FakeFacilitator:
    """An inner facilitator that answers as told and counts its calls (and the threads they ran on)."""

    def __init__(self, verify: VerifyResponse | Exception | None = None, settle: SettleResponse | None = None) -> None:
        self.verify_answer = verify or VerifyResponse(is_valid=True, payer=PAYER)
        self.settle_answer = settle or SettleResponse(
            success=True, transaction="0x" + "11" * 32, network="eip155:84532"
        )
        self.verify_calls = 0
        self.settle_calls = 0
        self.delay_s = 0.0

    async def verify(self, payload: PaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        self.verify_calls += 1
        await asyncio.sleep(self.delay_s)
        if isinstance(self.verify_answer, Exception):
            raise self.verify_answer
        return self.verify_answer

    async def settle(self, payload: PaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        self.settle_calls += 1
        return self.settle_answer

    def get_supported(self) -> SupportedResponse:
        return SupportedResponse(kinds=[], extensions=[], signers={})


def _requirements() -> PaymentRequirements:
    return PaymentRequirements(
        scheme="exact", network="eip155:84532", asset=TOKEN, amount="334", pay_to=PAY_TO, max_timeout_seconds=300,
        extra={"name": "USDC", "version": "2"},
    )  # fmt: skip


def _payload(
    nonce: str | None = None, valid_before_in_s: int = 300, valid_after: int = 0, key: str = PAYER_KEY
) -> PaymentPayload:
    """A payload signed by `key` (the payer's unless a test forges one) for the terms of `_requirements()`."""
    authorization, signature = sign_authorization(
        key, token=TOKEN, chain_id=84532, name="USDC", to=PAY_TO, value=334, valid_after=valid_after,
        valid_before=int(time.time()) + valid_before_in_s, nonce=nonce or "0x" + secrets.token_hex(32),
    )  # fmt: skip
    authorization["from"] = Account.from_key(PAYER_KEY).address  # a forger claims the payer's funds
    return PaymentPayload(
        x402_version=2, accepted=_requirements(), payload={"signature": signature, "authorization": authorization}
    )


class FakeChain:
    """The payer reads (balance, code) and the authorization state, as told; counts the calls."""

    def __init__(self, balance_atomic: int = 10**9, is_contract: bool = False, used: bool = True) -> None:
        self.funds = PayerFunds(balance_atomic=balance_atomic, is_contract=is_contract)
        self.used = used
        self.calls = 0

    def payer_funds(self, payer: str) -> PayerFunds:
        self.calls += 1
        return self.funds

    def authorization_used(self, payer: str, nonce: str) -> bool:
        self.calls += 1
        return self.used


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    ledger.open()
    yield ledger
    ledger.close()


def _guard(inner: Any, ledger: Ledger, **kwargs: Any) -> GuardedFacilitator:
    values: dict[str, Any] = {
        "chain": FakeChain(),
        "owner": "test",
        "verify_timeout_s": 5.0,
        "settle_timeout_s": 5.0,
        **kwargs,
    }
    return GuardedFacilitator(inner, ledger, POLICY, **values)


def _attempt() -> PaymentAttempt:
    return PaymentAttempt(request_id="r1", route="POST /synthesize", duration_s="2", protocol=2)


@contextmanager
def in_request(attempt: PaymentAttempt) -> Iterator[PaymentAttempt]:
    """Calls made inside see `attempt` as the current request's, as the edge middleware arranges."""
    token = current_attempt.set(attempt)
    try:
        yield attempt
    finally:
        current_attempt.reset(token)


async def test_validity_window_is_checked_before_anything_is_reserved(ledger: Ledger) -> None:
    inner = FakeFacilitator()
    guard = _guard(inner, ledger)
    cases = {
        "short": _payload(valid_before_in_s=60),  # less than min_validity_s
        "long": _payload(valid_before_in_s=3600),  # more than max_timeout_s + slack
        "future": _payload(valid_after=int(time.time()) + 600),
    }
    reasons = {name: (await guard.verify(payload, _requirements())).invalid_reason for name, payload in cases.items()}
    assert reasons == {
        "short": "invalid_exact_evm_payload_authorization_valid_before",
        "long": "invalid_exact_evm_payload_authorization_valid_before",
        "future": "invalid_exact_evm_payload_authorization_valid_after",
    }
    assert inner.verify_calls == 0 and ledger.entries() == []


async def test_concurrent_copies_reach_the_inner_facilitator_once(ledger: Ledger) -> None:
    inner = FakeFacilitator()
    inner.delay_s = 0.05  # keep the first copy inside verification while the others arrive
    guard = _guard(inner, ledger)
    payload = _payload()
    results = await asyncio.gather(*(guard.verify(payload, _requirements()) for _ in range(10)))
    assert sorted(result.is_valid for result in results) == [False] * 9 + [True]
    assert {r.invalid_reason for r in results if not r.is_valid} == {"invalid_exact_evm_nonce_already_used"}
    assert inner.verify_calls == 1
    [entry] = ledger.entries()
    assert (entry.state, entry.amount_atomic, entry.payer) == ("reserved", 334, PAYER)


async def test_failed_verification_frees_the_key_for_a_retry(ledger: Ledger) -> None:
    inner = FakeFacilitator(verify=VerifyResponse(is_valid=False, invalid_reason="invalid_exact_evm_payload_signature"))
    guard = _guard(inner, ledger)
    payload = _payload()
    assert (await guard.verify(payload, _requirements())).invalid_reason == "invalid_exact_evm_payload_signature"
    assert ledger.entries() == []
    inner.verify_answer = VerifyResponse(is_valid=True, payer=PAYER)
    assert (await guard.verify(payload, _requirements())).is_valid


async def test_an_outage_is_reported_as_unavailable_never_as_a_bad_payment(ledger: Ledger) -> None:
    inner = FakeFacilitator(verify=requests.ConnectionError("connection refused"))
    guard = _guard(inner, ledger)
    attempt = _attempt()
    with in_request(attempt):
        result = await guard.verify(_payload(), _requirements())
    assert result.invalid_reason == ERR_PAYMENT_UNAVAILABLE
    assert attempt.unavailable == "the payment network's RPC is unreachable"  # our words, not the exception's
    assert ledger.entries() == []


async def test_a_slow_verification_times_out_as_unavailable(ledger: Ledger) -> None:
    inner = FakeFacilitator()
    inner.delay_s = 5
    guard = _guard(inner, ledger, verify_timeout_s=0.1)
    attempt = _attempt()
    with in_request(attempt):
        result = await guard.verify(_payload(), _requirements())
    assert result.invalid_reason == ERR_PAYMENT_UNAVAILABLE and "did not finish" in (attempt.unavailable or "")


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        (SettleResponse(success=True, transaction="0x" + "11" * 32, network="eip155:84532"), "settled"),
        (
            SettleResponse(
                success=False, error_reason="settlement_pending", transaction="0x" + "22" * 32, network="eip155:84532"
            ),
            "pending",
        ),  # fmt: skip
        (
            SettleResponse(success=False, error_reason="transaction_failed", transaction="", network="eip155:84532"),
            "failed",
        ),  # fmt: skip
    ],
)
async def test_settlement_outcome_is_recorded(ledger: Ledger, answer: SettleResponse, state: str) -> None:
    guard = _guard(FakeFacilitator(settle=answer), ledger)
    payload = _payload()
    with in_request(_attempt()):
        assert (await guard.verify(payload, _requirements())).is_valid
        result = await guard.settle(payload, _requirements())
    assert result == answer
    authorization = parse_authorization(payload.payload)
    entry = ledger.get(authorization.payer, authorization.nonce)
    assert entry is not None and entry.state == state
    assert entry.tx_hash == (answer.transaction or None)


async def test_a_second_settle_of_a_pending_payment_does_not_wait_again(ledger: Ledger) -> None:
    pending = SettleResponse(success=False, error_reason="settlement_pending", transaction="0x" + "22" * 32,
                             network="eip155:84532")  # fmt: skip
    inner = FakeFacilitator(settle=pending)
    guard = _guard(inner, ledger)
    payload = _payload()
    with in_request(_attempt()):
        await guard.verify(payload, _requirements())
        await guard.settle(payload, _requirements())
        again = await guard.settle(payload, _requirements())  # the SDK retries settlement_pending once
    assert again.error_reason == "settlement_pending" and again.transaction == pending.transaction
    assert inner.settle_calls == 1


async def test_release_frees_a_verified_payment_whose_request_failed(ledger: Ledger) -> None:
    guard = _guard(FakeFacilitator(), ledger)
    attempt, payload = _attempt(), _payload()
    with in_request(attempt):
        assert (await guard.verify(payload, _requirements())).is_valid
    await guard.release(attempt, "handler_failed:500")
    [entry] = ledger.entries()
    assert (entry.state, entry.error_reason) == ("released", "handler_failed:500")
    assert (await guard.verify(payload, _requirements())).is_valid  # the client may present it again

"""The adapter's checks before and around the SDK, with fakes (issue 14): exact payload shapes, local signature
recovery before any reservation or RPC call, reservations capped by the payer's balance, contract wallets,
per-payer rate limits, no SDK or exception text in what clients read, and a remote facilitator's "settled"
confirmed on chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from x402.schemas import PaymentPayload, SettleResponse, VerifyResponse

from service.payment.held import outcome_is_unknown
from service.payment.ledger import Ledger, LedgerError, Reservation
from service.payment.ratelimit import RateLimiter
from service.payment.verdict import clean_settle
from tests.service.payment.test_facilitator import (
    PAYER,
    FakeChain,
    FakeFacilitator,
    _attempt,
    _guard,
    _payload,
    _requirements,
    in_request,
)

pytestmark = pytest.mark.anyio

SECRET_URL = "https://base-mainnet.example/v2/SECRET-API-KEY"


class CountingLedger(Ledger):
    """A real SQLite ledger that counts reservation attempts."""

    reservations = 0

    def reserve_within(self, reservation: Reservation, funds_atomic: int) -> Any:
        self.reservations += 1
        return super().reserve_within(reservation, funds_atomic)


@pytest.fixture
def counting_ledger(tmp_path: Path) -> Any:
    ledger = CountingLedger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    ledger.open()
    yield ledger
    ledger.close()


def _with_extra(payload: PaymentPayload, **extra: Any) -> PaymentPayload:
    return PaymentPayload(x402_version=2, accepted=payload.accepted, payload={**payload.payload, **extra})


async def test_a_second_authorization_next_to_the_first_never_reaches_the_sdk(counting_ledger: CountingLedger) -> None:
    inner, chain = FakeFacilitator(), FakeChain()
    guard = _guard(inner, counting_ledger, chain=chain)
    permit2 = {"from": PAYER, "permitted": {"token": "0x" + "cc" * 20, "amount": "334"}, "nonce": "1", "deadline": "9"}
    payload = _with_extra(_payload(), permit2Authorization=permit2)
    attempt = _attempt()
    with in_request(attempt):
        verdict = await guard.verify(payload, _requirements())
        settled = await guard.settle(payload, _requirements())
    assert (verdict.is_valid, verdict.invalid_reason) == (False, "invalid_payload")
    assert "permit2Authorization" in (attempt.reject_message or "")
    assert (settled.success, settled.error_reason) == (False, "invalid_payload")
    assert (inner.verify_calls, inner.settle_calls, chain.calls, counting_ledger.reservations) == (0, 0, 0, 0)


async def test_a_forged_signature_costs_no_reservation_and_no_rpc_call(counting_ledger: CountingLedger) -> None:
    inner, chain = FakeFacilitator(), FakeChain()
    guard = _guard(inner, counting_ledger, chain=chain)
    forged = _payload(key="0x" + "b2" * 32)  # signed by another key, claiming the payer's funds
    verdict = await guard.verify(forged, _requirements())
    assert verdict.invalid_reason == "invalid_exact_evm_payload_signature"
    assert (inner.verify_calls, chain.calls, counting_ledger.reservations) == (0, 0, 0)


async def test_in_flight_reservations_never_exceed_the_payers_balance(counting_ledger: CountingLedger) -> None:
    guard = _guard(FakeFacilitator(), counting_ledger, chain=FakeChain(balance_atomic=700))  # covers 2 x 334
    verdicts = [await guard.verify(_payload(), _requirements()) for _ in range(3)]
    assert [v.is_valid for v in verdicts] == [True, True, False]
    assert verdicts[2].invalid_reason == "invalid_exact_evm_insufficient_balance"
    assert [e.state for e in counting_ledger.entries()] == ["reserved", "reserved"]


async def test_contract_wallet_payers_are_refused_unless_enabled(counting_ledger: CountingLedger) -> None:
    inner = FakeFacilitator()
    refused = await _guard(inner, counting_ledger, chain=FakeChain(is_contract=True)).verify(
        _payload(), _requirements()
    )
    assert refused.invalid_reason == "contract_wallet_not_accepted" and inner.verify_calls == 0
    allowed = _guard(inner, counting_ledger, chain=FakeChain(is_contract=True), allow_contract_wallets=True)
    assert (await allowed.verify(_payload(), _requirements())).is_valid
    # A 65-byte signature need not recover for a contract (EIP-1271): the SDK decides, when enabled.
    assert (await allowed.verify(_payload(key="0x" + "b2" * 32), _requirements())).is_valid
    eoa = _guard(inner, counting_ledger, chain=FakeChain(is_contract=False), allow_contract_wallets=True)
    forged = await eoa.verify(_payload(key="0x" + "b2" * 32), _requirements())
    assert forged.invalid_reason == "invalid_exact_evm_payload_signature"  # no code: it had to recover


async def test_a_payers_attempts_are_rate_limited_after_its_signature_is_checked(
    counting_ledger: CountingLedger,
) -> None:
    guard = _guard(FakeFacilitator(), counting_ledger, payer_limit=RateLimiter(per_minute=1, burst=2))
    forged = await guard.verify(_payload(key="0x" + "b2" * 32), _requirements())  # does not spend the budget
    assert forged.invalid_reason == "invalid_exact_evm_payload_signature"
    attempts = [_attempt() for _ in range(3)]
    verdicts = []
    for attempt in attempts:
        with in_request(attempt):
            verdicts.append(await guard.verify(_payload(), _requirements()))
    assert [v.is_valid for v in verdicts] == [True, True, False]
    assert verdicts[2].invalid_reason == "rate_limited" and attempts[2].retry_after_s is not None
    assert counting_ledger.reservations == 2


async def test_sdk_and_exception_texts_never_reach_clients(counting_ledger: CountingLedger) -> None:
    failed = SettleResponse(
        success=False, error_reason=f"HTTPError: 500 for url {SECRET_URL}", error_message=f"for url {SECRET_URL}",
        transaction="", network="eip155:84532",
    )  # fmt: skip
    inner = FakeFacilitator(
        verify=VerifyResponse(is_valid=True, payer=PAYER, invalid_message=SECRET_URL), settle=failed
    )
    guard = _guard(inner, counting_ledger)
    payload, attempt = _payload(), _attempt()
    with in_request(attempt):
        assert (await guard.verify(payload, _requirements())).is_valid
        settled = await guard.settle(payload, _requirements())
    assert "SECRET" not in settled.model_dump_json() and settled.error_reason == "settlement_failed"
    down = _guard(
        FakeFacilitator(verify=requests.HTTPError(f"500 Server Error for url: {SECRET_URL}")), counting_ledger
    )
    attempt = _attempt()
    with in_request(attempt):
        await down.verify(_payload(), _requirements())
    assert attempt.unavailable is not None and "SECRET" not in attempt.unavailable
    assert clean_settle(failed).error_message is None


async def test_a_remote_facilitators_settled_verdict_is_confirmed_on_chain(counting_ledger: CountingLedger) -> None:
    chain = FakeChain(used=False)  # the facilitator says "settled"; the chain does not show it
    guard = _guard(FakeFacilitator(), counting_ledger, chain=chain, confirm_settlements=True)
    payload, attempt = _payload(), _attempt()
    with in_request(attempt):
        assert (await guard.verify(payload, _requirements())).is_valid
        settled = await guard.settle(payload, _requirements())
    assert (settled.success, settled.error_reason) == (False, "settlement_pending")
    [entry] = counting_ledger.entries()
    assert entry.state == "pending"  # reconciliation decides from the chain; the audio is held, not served
    assert Account.from_key("0x" + "a1" * 32).address.lower() == entry.payer


class LedgerFailingAtSettlement(CountingLedger):
    def transition(self, payer: str, nonce: str, state: Any, **kwargs: Any) -> bool:
        if state == "served":
            raise LedgerError("payment ledger (sqlite): disk I/O error")
        return super().transition(payer, nonce, state, **kwargs)


async def test_a_ledger_failure_before_settlement_is_not_an_unknown_outcome(tmp_path: Path) -> None:
    ledger = LedgerFailingAtSettlement(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    ledger.open()
    inner = FakeFacilitator()
    guard = _guard(inner, ledger)
    payload, attempt = _payload(), _attempt()
    with in_request(attempt):
        assert (await guard.verify(payload, _requirements())).is_valid
        settled = await guard.settle(payload, _requirements())
    ledger.close()
    assert (settled.success, settled.error_reason, inner.settle_calls) == (False, "payment_unavailable", 0)
    assert not outcome_is_unknown(attempt)  # nothing was sent: 503 "nothing was charged" is the truth
    timed_out = _attempt()
    timed_out.settle_sent, timed_out.unavailable = True, "the payment network's RPC is unreachable"
    assert outcome_is_unknown(timed_out)

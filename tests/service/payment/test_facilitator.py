"""The facilitator adapter. Unit tests with a FakeFacilitator (validity window, reservation before verification,
one inner call for concurrent copies, outages reported as such, settlement records, thread offload); then the
faults on a real chain: the RPC dying mid-run (503, never free audio) and a settlement that is not confirmed in
time (settlement_pending with the tx hash, reconciled later)."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from eth_account import Account
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse, SupportedResponse, VerifyResponse

from model.runtime.synthesizer import Synthesizer
from service.app import create_app
from service.commands.bench_pay import running_server
from service.payment.chain import PayerFunds
from service.payment.devchain.launch import DevChain, start_devchain
from service.payment.facilitator import (
    ERR_PAYMENT_UNAVAILABLE,
    GuardedFacilitator,
    PaymentAttempt,
    ValidityPolicy,
    current_attempt,
    parse_authorization,
)
from service.payment.inner import RemoteFacilitator, ThreadedFacilitator
from service.payment.ledger import Ledger
from service.settings import Settings
from tests.service.payment.support import (
    FailingSynthesizer,
    HoldingSynthesizer,
    balance,
    decode_header,
    facilitator_app,
    live_service,
    new_payer,
    paying_client,
    payment_settings,
    rpc,
    sign_authorization,
)
from tests.service.payment.test_middleware import _sdk_payment
from tests.service.support import form

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


async def test_threaded_facilitator_runs_blocking_calls_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    seen: list[tuple[int, PaymentAttempt | None]] = []

    class BlockingSync:
        def verify(self, payload: Any, requirements: Any) -> VerifyResponse:
            seen.append((threading.get_ident(), current_attempt.get()))
            time.sleep(0.05)
            return VerifyResponse(is_valid=True)

    attempt = _attempt()
    with in_request(attempt):
        facilitator = ThreadedFacilitator(BlockingSync())  # type: ignore[arg-type]
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            for _ in range(3):
                await asyncio.sleep(0.005)
                ticks += 1

        await asyncio.gather(facilitator.verify(_payload(), _requirements()), tick())
    [(thread_id, seen_attempt)] = seen
    assert thread_id != loop_thread
    assert seen_attempt is attempt  # the worker thread sees the request's attempt (for RPC outage notes)
    assert ticks == 3  # the loop kept running while the call blocked


@pytest.mark.parametrize(
    "mutate",
    [
        lambda a: a.pop("nonce"),
        lambda a: a.update(nonce="0x1234"),
        lambda a: a.update(value="-1"),
        lambda a: a.update(value=str(2**256)),
        lambda a: a.update(to="not-an-address"),
        lambda a: a.update(validBefore=12),
    ],
)
def test_parse_authorization_refuses_malformed_fields(mutate: Callable[[dict[str, Any]], Any]) -> None:
    payload = _payload().payload
    mutate(payload["authorization"])
    with pytest.raises(ValueError, match="payload.authorization"):
        parse_authorization(payload)


# --- faults on a real chain ---------------------------------------------------------------------------------------


async def test_rpc_dying_mid_run_gives_503_and_never_free_audio(
    tmp_path: Path, tiny_model_dir: Path, synthesizer: Synthesizer, reference_wav: bytes
) -> None:
    holding = HoldingSynthesizer(synthesizer)
    with start_devchain(None) as chain:  # a chain of its own: this test kills it
        settings = Settings(
            model_dir=tiny_model_dir, data_dir=tmp_path, builtin_voice=False,
            payment=payment_settings(chain, f"sqlite:///{tmp_path / 'ledger.sqlite3'}"),
        )  # fmt: skip
        payer = new_payer(chain)
        with live_service(create_app(settings, synthesizers=[holding])) as service:
            async with paying_client(service.url, payer) as client:
                ok = await client.post("/synthesize", params={"duration": "1"}, **form("One.", audio=reference_wav))
                assert ok.status_code == 200
                holding.hold()
                in_flight = asyncio.create_task(
                    client.post("/synthesize", params={"duration": "1"}, **form("Two.", audio=reference_wav))
                )
                assert await asyncio.to_thread(holding.entered.wait, 30)  # verified; synthesis is running
                chain.node.stop()  # the RPC dies between verification and settlement
                holding.release()
                died = await in_flight
                after = await client.post(
                    "/synthesize", params={"duration": "1"}, **form("Three.", audio=reference_wav)
                )
            entries = service.layer.ledger.entries()
    for reply in (died, after):
        assert reply.headers["content-type"] == "application/json"  # never the audio
        assert reply.headers["retry-after"]
    # Dying during settlement: a transaction may have left, so the outcome is unknown (not "nothing charged").
    assert (died.status_code, died.json()["error"]["code"]) == (504, "settlement_outcome_unknown")
    assert (after.status_code, after.json()["error"]["code"]) == (503, "payment_unavailable")
    assert "RPC" in after.json()["error"]["message"]
    assert [e.state for e in entries] == ["settled", "pending"]  # the third never got a reservation
    assert entries[1].error_reason is not None


async def test_a_settlement_not_confirmed_in_time_is_outcome_unknown_then_the_same_header_gets_the_audio(
    tmp_path: Path, tiny_model_dir: Path, synthesizer: Synthesizer, reference_wav: bytes
) -> None:
    holding = HoldingSynthesizer(synthesizer)
    with start_devchain(None) as chain:
        settings = Settings(
            model_dir=tiny_model_dir, data_dir=tmp_path, builtin_voice=False,
            payment=payment_settings(chain, f"sqlite:///{tmp_path / 'ledger.sqlite3'}", confirmation_timeout_s=2),
        )  # fmt: skip
        payer = new_payer(chain)
        with live_service(create_app(settings, synthesizers=[holding])) as service:
            async with httpx.AsyncClient(base_url=service.url, timeout=60) as plain:
                unpaid = await plain.post("/synthesize", params={"duration": "1"}, **form("Slow.", audio=reference_wav))
            header = await _sdk_payment(decode_header(unpaid.headers["PAYMENT-REQUIRED"]), payer)

            async def again() -> httpx.Response:
                async with httpx.AsyncClient(base_url=service.url, timeout=60) as plain:
                    return await plain.post(
                        "/synthesize", params={"duration": "1"}, headers={"PAYMENT-SIGNATURE": header},
                        **form("Slow.", audio=reference_wav),
                    )  # fmt: skip

            holding.hold()
            request = asyncio.create_task(again())
            assert await asyncio.to_thread(holding.entered.wait, 30)
            rpc(chain, "evm_setAutomine", False)  # the settlement transaction will sit in the mempool
            holding.release()
            reply = await request
            [entry] = service.layer.ledger.entries()
            assert (entry.state, entry.error_reason) == ("pending", "settlement_pending")
            still_unknown = await again()
            rpc(chain, "evm_setAutomine", True)
            rpc(chain, "evm_mine")
            collected = await again()
            replayed = await again()
            settled = service.layer.ledger.get(entry.payer, entry.nonce)
            paid = balance(chain, payer.address)
            completed = service.completed_requests()
    # An honest answer: the outcome is unknown, the same header (not a new signature) collects the audio.
    assert reply.status_code == 504 and reply.headers["content-type"] == "application/json"
    assert reply.json()["error"]["code"] == "settlement_outcome_unknown" and reply.headers["retry-after"]
    receipt = decode_header(reply.headers["PAYMENT-RESPONSE"])
    assert receipt["success"] is False and receipt["errorReason"] == "settlement_pending"
    assert receipt["transaction"] == entry.tx_hash and entry.tx_hash
    assert still_unknown.status_code == 504
    assert collected.status_code == 200 and collected.headers["content-type"] == "audio/wav"
    assert decode_header(collected.headers["PAYMENT-RESPONSE"]) == {
        "success": True, "payer": payer.address, "transaction": entry.tx_hash, "network": "eip155:84532",
    }  # fmt: skip
    assert replayed.status_code == 402  # handed out once; the authorization is spent
    assert settled is not None and (settled.state, settled.tx_hash) == ("settled", entry.tx_hash)
    assert paid == 1_000_000 - 167
    assert completed == 1  # synthesized once, delivered once
    assert collected.content and collected.content[:4] == b"RIFF"


async def test_failed_synthesis_is_never_settled_and_frees_the_payment(
    tmp_path: Path,
    devchain: DevChain,
    synthesizer: Synthesizer,
    service_settings: Callable[..., Settings],
    reference_wav: bytes,
) -> None:
    failing = FailingSynthesizer(synthesizer, failures=1)
    payer = new_payer(devchain)
    settings = service_settings(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    with live_service(create_app(settings, synthesizers=[failing])) as service:
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as plain:
            unpaid = await plain.post("/synthesize", params={"duration": "1"}, **form("Hi.", audio=reference_wav))
        header = await _sdk_payment(decode_header(unpaid.headers["PAYMENT-REQUIRED"]), payer)

        async def pay(audio: bytes) -> httpx.Response:
            # A fresh connection each time: uvicorn closes the one on which the app raised (the 500).
            async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
                return await client.post(
                    "/synthesize", params={"duration": "1"}, headers={"PAYMENT-SIGNATURE": header},
                    **form("Hi.", audio=audio),
                )  # fmt: skip

        crashed = await pay(reference_wav)
        after_crash = service.layer.ledger.entries()
        bad_input = await pay(b"not audio at all")
        after_bad_input = service.layer.ledger.entries()
        retried = await pay(reference_wav)
        final = service.layer.ledger.entries()
    assert crashed.status_code == 500 and "payment-response" not in crashed.headers
    assert [(e.state, e.error_reason) for e in after_crash] == [("released", "handler_error_or_disconnect")]
    assert bad_input.status_code in (400, 422)
    assert [e.state for e in after_bad_input] == ["released"]
    assert retried.status_code == 200  # the released authorization may be presented again
    assert [e.state for e in final] == ["settled"]
    assert balance(devchain, payer.address) == 1_000_000 - 167  # charged once, for the audio delivered


async def test_a_request_that_times_out_is_never_settled(
    tmp_path: Path,
    devchain: DevChain,
    synthesizer: Synthesizer,
    service_settings: Callable[..., Settings],
    reference_wav: bytes,
) -> None:
    holding = HoldingSynthesizer(synthesizer)
    payer = new_payer(devchain)
    settings = service_settings(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", request_timeout_s=1.0)
    with live_service(create_app(settings, synthesizers=[holding])) as service:
        holding.hold()
        try:
            async with paying_client(service.url, payer) as client:
                reply = await client.post("/synthesize", params={"duration": "1"}, **form("Hi.", audio=reference_wav))
        finally:
            holding.release()
        entries = service.layer.ledger.entries()
    assert reply.status_code == 504
    assert [(e.state, e.error_reason) for e in entries] == [("released", "handler_failed:504")]
    assert balance(devchain, payer.address) == 1_000_000


async def test_facilitator_mode_pays_through_a_remote_facilitator_and_503s_without_it(
    tmp_path: Path,
    devchain: DevChain,
    synthesizer: Synthesizer,
    service_settings: Callable[..., Settings],
    reference_wav: bytes,
) -> None:
    remote = facilitator_app(devchain)
    payer = new_payer(devchain)
    pay_to_before = balance(devchain, devchain.facts.pay_to)
    with ExitStack() as remote_server:
        facilitator_url = remote_server.enter_context(running_server(remote))
        payment = {"mode": "facilitator", "facilitator_url": facilitator_url, "facilitator_private_key": None}
        settings = service_settings(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", payment=payment)
        with live_service(create_app(settings, synthesizers=[synthesizer])) as service:
            async with paying_client(service.url, payer) as client:
                paid = await client.post("/synthesize", params={"duration": "1"}, **form("Hi.", audio=reference_wav))
                remote_server.close()  # the facilitator goes away
                down = await client.post("/synthesize", params={"duration": "1"}, **form("Hi.", audio=reference_wav))
            entries = service.layer.ledger.entries()
    assert paid.status_code == 200, paid.text
    assert remote.state.calls == ["verify", "settle"]
    assert decode_header(paid.headers["PAYMENT-RESPONSE"])["success"] is True
    assert balance(devchain, devchain.facts.pay_to) == pay_to_before + 167
    assert down.status_code == 503 and down.json()["error"]["code"] == "payment_unavailable"
    assert "facilitator" in down.json()["error"]["message"]
    assert [e.state for e in entries] == ["settled"]


async def test_a_facilitator_answering_without_a_verdict_is_an_outage(ledger: Ledger) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="internal error")

    client = HTTPFacilitatorClient(
        FacilitatorConfig(
            url="http://facilitator.test", http_client=httpx.AsyncClient(transport=httpx.MockTransport(broken))
        )
    )
    guard = _guard(RemoteFacilitator(client), ledger)
    attempt = _attempt()
    with in_request(attempt):
        result = await guard.verify(_payload(), _requirements())
    assert result.invalid_reason == ERR_PAYMENT_UNAVAILABLE
    assert attempt.unavailable == "the payment facilitator did not answer with a verdict"
    assert ledger.entries() == []

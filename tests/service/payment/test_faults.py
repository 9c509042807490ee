"""Faults on a real chain, against the live service: the RPC dying mid-run (never free audio), a settlement not
confirmed in time (an honest unknown outcome, then the audio for the same header), failed or timed-out synthesis
(never settled), and facilitator mode with a remote facilitator that works, goes away or answers no verdict."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from x402.http import FacilitatorConfig, HTTPFacilitatorClient

from model.runtime.synthesizer import Synthesizer
from service.app import create_app
from service.payment.devchain.launch import DevChain, start_devchain
from service.payment.inner import RemoteFacilitator
from service.payment.ledger import Ledger
from service.payment.verdict import ERR_PAYMENT_UNAVAILABLE
from service.settings import Settings
from smalltts.cli.bench_pay import running_server
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
)
from tests.service.payment.test_facilitator import _attempt, _guard, _payload, _requirements, in_request
from tests.service.payment.test_middleware import _sdk_payment
from tests.service.support import form

pytestmark = pytest.mark.anyio


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    ledger.open()
    yield ledger
    ledger.close()


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

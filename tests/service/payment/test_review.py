"""Issue 14 (security review of the payment layer), against the live service on the dev chain: each finding
as an attack or a fault that must now end without audio, without a wasted settlement transaction, and with a
clear answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from fastapi import FastAPI

from model.runtime.synthesizer import Synthesizer
from service.app import create_app
from service.payment.devchain.launch import DevChain
from service.payment.devchain.token import token_contract
from service.payment.layer import PaymentConfigError, check_payments
from service.settings import Settings
from smalltts.cli.bench_pay import running_server
from tests.service.payment.support import (
    HoldingSynthesizer,
    LiveService,
    balance,
    decode_header,
    encode_header,
    facilitator_app,
    live_service,
    new_payer,
    rpc,
    web3,
)
from tests.service.payment.test_middleware import _sdk_payment
from tests.service.support import form

pytestmark = pytest.mark.anyio

PRICE_1S = 167


async def _required(service: LiveService, **params: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
        unpaid = await client.post("/synthesize", params={"duration": "1", **params}, **form("Hi."))
    assert unpaid.status_code == 402
    return decode_header(unpaid.headers["PAYMENT-REQUIRED"])


async def _pay(service: LiveService, header: str, audio: bytes, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
        return await client.post(
            "/synthesize", params={"duration": "1", **params}, headers={"PAYMENT-SIGNATURE": header},
            **form("Hi.", audio=audio),
        )  # fmt: skip


@contextmanager
def _service(
    service_settings: Callable[..., Settings], tmp_path: Path, synthesizer: Any, **payment: Any
) -> Iterator[LiveService]:
    settings = service_settings(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", payment=payment)
    with live_service(create_app(settings, synthesizers=[synthesizer])) as service:
        yield service


def _facilitator_tx_count(chain: DevChain) -> int:
    return int(web3(chain).eth.get_transaction_count(Account.from_key(chain.facilitator_key).address))


async def test_finding_1_a_permit2_authorization_next_to_the_eip3009_one_is_refused_at_the_edge(
    paid_service: LiveService, devchain: DevChain, reference_wav: bytes
) -> None:
    payer = new_payer(devchain)
    payload = decode_header(await _sdk_payment(await _required(paid_service), payer))
    payload["payload"]["permit2Authorization"] = {"from": payer.address, "nonce": "1", "deadline": "99999999999"}
    completed = paid_service.completed_requests()

    reply = await _pay(paid_service, encode_header(payload), reference_wav)

    assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid_payload"
    assert "permit2Authorization" in reply.json()["error"]["message"]
    assert reply.json()["error"]["field"] == "PAYMENT-SIGNATURE"
    assert paid_service.completed_requests() == completed
    assert not [e for e in paid_service.layer.ledger.entries() if e.payer == payer.address.lower()]


async def test_finding_2_a_payer_funded_for_one_request_gets_one_of_eight_concurrent_ones(
    paid_service: LiveService, devchain: DevChain, reference_wav: bytes
) -> None:
    payer = new_payer(devchain, amount_atomic=PRICE_1S)
    required = await _required(paid_service)
    headers = [await _sdk_payment(required, payer) for _ in range(8)]  # eight distinct nonces
    transactions = _facilitator_tx_count(devchain)
    completed = paid_service.completed_requests()

    replies = await asyncio.gather(*(_pay(paid_service, header, reference_wav) for header in headers))

    assert sorted(reply.status_code for reply in replies) == [200] + [402] * 7
    refused = {reply.json()["error"] for reply in replies if reply.status_code == 402}
    assert refused == {"invalid_exact_evm_insufficient_balance"}
    assert paid_service.completed_requests() == completed + 1  # one synthesis, not eight
    assert _facilitator_tx_count(devchain) == transactions + 1  # one settlement sent, none wasted
    rows = [e for e in paid_service.layer.ledger.entries() if e.payer == payer.address.lower()]
    assert [e.state for e in rows] == ["settled"]
    assert balance(devchain, payer.address) == 0


async def test_finding_2_funds_moved_away_during_synthesis_fail_the_simulation_and_send_nothing(
    tmp_path: Path,
    devchain: DevChain,
    synthesizer: Synthesizer,
    service_settings: Callable[..., Settings],
    reference_wav: bytes,
) -> None:
    holding = HoldingSynthesizer(synthesizer)
    payer = new_payer(devchain)
    with _service(service_settings, tmp_path, holding) as service:
        header = await _sdk_payment(await _required(service), payer)
        holding.hold()
        request = asyncio.create_task(_pay(service, header, reference_wav))
        assert await asyncio.to_thread(holding.entered.wait, 30)  # verified: the synthesis is running
        w3 = web3(devchain)
        rpc(devchain, "anvil_setBalance", payer.address, hex(10**18))
        rpc(devchain, "anvil_impersonateAccount", payer.address)
        token = token_contract(w3, devchain.facts.token_address)
        w3.eth.wait_for_transaction_receipt(
            token.functions.transfer(Account.create().address, 1_000_000).transact({"from": payer.address})
        )
        transactions = _facilitator_tx_count(devchain)
        holding.release()
        reply = await request
        rows = service.layer.ledger.entries()
    assert reply.status_code == 402 and reply.headers["content-type"] == "application/json"  # no audio
    assert _facilitator_tx_count(devchain) == transactions  # the settlement was simulated, never sent
    assert [(e.state, e.tx_hash) for e in rows] == [("failed", None)]


async def test_finding_3_an_rpc_error_never_shows_its_url_to_the_client(
    tmp_path: Path,
    devchain: DevChain,
    synthesizer: Synthesizer,
    service_settings: Callable[..., Settings],
    reference_wav: bytes,
) -> None:
    """An RPC behind a provider URL with an API key in its path, which fails with HTTP 500 at settlement."""
    proxy, state = _failing_rpc_proxy(devchain)
    holding = HoldingSynthesizer(synthesizer)
    payer = new_payer(devchain)
    with running_server(proxy) as proxy_url:
        with _service(service_settings, tmp_path, holding, rpc_url=f"{proxy_url}/v2/SECRET-API-KEY") as service:
            header = await _sdk_payment(await _required(service), payer)
            holding.hold()
            request = asyncio.create_task(_pay(service, header, reference_wav))
            assert await asyncio.to_thread(holding.entered.wait, 30)  # verified through the proxy
            state["failing"] = True
            holding.release()
            reply = await request
            down = await _pay(service, await _sdk_payment(await _required(service), payer), reference_wav)
    for answer in (reply, down):
        receipt = answer.headers.get("PAYMENT-RESPONSE")
        everything = answer.text + str(dict(answer.headers)) + (str(decode_header(receipt)) if receipt else "")
        assert "SECRET-API-KEY" not in everything and "/v2/" not in everything
        assert answer.headers["content-type"] == "application/json"  # never the audio
    # The RPC failed while settling: whether the transaction left is unknown, and the answer says so.
    assert reply.status_code == 504 and reply.json()["error"]["code"] == "settlement_outcome_unknown"
    assert down.status_code == 503 and down.json()["error"]["code"] == "payment_unavailable"


def _failing_rpc_proxy(chain: DevChain) -> tuple[FastAPI, dict[str, bool]]:
    app, state = FastAPI(), {"failing": False}

    @app.post("/v2/{key}")
    async def forward(key: str, body: dict[str, Any] | list[Any]) -> Any:
        if state["failing"]:
            from fastapi import HTTPException

            raise HTTPException(500, "upstream exploded")
        async with httpx.AsyncClient() as client:
            return (await client.post(chain.facts.rpc_url, json=body)).json()

    return app, state


async def test_finding_5_junk_headers_from_one_client_are_rate_limited(
    tmp_path: Path,
    devchain: DevChain,
    synthesizer: Synthesizer,
    service_settings: Callable[..., Settings],
    reference_wav: bytes,
) -> None:
    with _service(
        service_settings, tmp_path, synthesizer, client_attempts_per_min=1, attempts_burst=3
    ) as service:  # fmt: skip
        replies = [await _pay(service, encode_header({"x402Version": 2, "junk": i}), reference_wav) for i in range(4)]
        unpaid = await _required(service)  # requests without a payment header are not payment attempts
    assert [reply.status_code for reply in replies] == [400, 400, 400, 429]
    assert replies[3].json()["error"]["code"] == "rate_limited" and int(replies[3].headers["retry-after"]) >= 1
    assert unpaid["accepts"]


async def test_finding_6_text_is_capped_before_it_is_phonemized_for_a_price(paid_service: LiveService) -> None:
    # The quote used to accept 4000 characters; every way to a price now stops at the paid routes' 1000.
    async with httpx.AsyncClient(base_url=paid_service.url) as client:
        quote = await client.get("/v1/price", params={"text": "a" * 1001})
        speech = await client.post("/v1/audio/speech", json={"input": "a" * 1001, "voice": "default"})
        synth = await client.post("/synthesize", **form("a" * 1001))
    assert quote.status_code == 422 and quote.json()["error"]["field"] == "text"
    assert speech.status_code == 422 and speech.json()["error"]["field"] == "input"
    assert synth.status_code == 422 and synth.json()["error"]["code"] == "text_too_long"


async def test_finding_9_the_dev_chain_network_refuses_an_rpc_that_is_not_a_local_anvil(
    tmp_path: Path, devchain: DevChain, service_settings: Callable[..., Settings]
) -> None:
    """A node on chain 84532 that is not anvil (as a real Base Sepolia node would be)."""
    node = FastAPI()

    @node.post("/")
    async def answer(body: dict[str, Any]) -> dict[str, Any]:
        results = {"eth_chainId": hex(84532), "web3_clientVersion": "Geth/v1.14.0-stable/linux-amd64/go1.22"}
        return {"jsonrpc": "2.0", "id": body.get("id"), "result": results.get(body.get("method", ""), "0x")}

    with running_server(node) as node_url:
        settings = service_settings(f"sqlite:///{tmp_path / 'l.sqlite3'}", payment={"rpc_url": node_url})
        with pytest.raises(PaymentConfigError, match="local anvil"):
            check_payments(create_app(settings))


async def test_finding_10_more_steps_and_short_clips_are_priced_and_the_quote_agrees(
    tmp_path: Path, devchain: DevChain, synthesizer: Synthesizer, service_settings: Callable[..., Settings]
) -> None:
    with _service(service_settings, tmp_path, synthesizer, min_charge_usd="0.002") as service:
        default_steps = service.app.state.service.limits.default_steps
        double = str(2 * default_steps)
        at_default = (await _required(service, steps=str(default_steps)))["accepts"][0]["amount"]
        doubled = (await _required(service, steps=double))["accepts"][0]["amount"]
        async with httpx.AsyncClient(base_url=service.url) as client:
            quote = (await client.get("/v1/price", params={"duration": "1", "steps": double})).json()
            short = (await client.get("/v1/price", params={"duration": "0.5"})).json()
            short_402 = await client.post("/synthesize", params={"duration": "0.5"}, **form("Hi."))
    assert (at_default, doubled) == ("2000", "2000")  # 1 s costs 167, below the minimum charge of 2000
    assert quote["amount_atomic"] == "2000" and short["amount_atomic"] == "2000"
    assert decode_header(short_402.headers["PAYMENT-REQUIRED"])["accepts"][0]["amount"] == "2000"


async def test_finding_10_steps_above_the_default_cost_proportionally_more(
    paid_service: LiveService,
) -> None:
    default_steps = paid_service.app.state.service.limits.default_steps
    doubled = (await _required(paid_service, steps=str(2 * default_steps)))["accepts"][0]["amount"]
    fewer = (await _required(paid_service, steps="1"))["accepts"][0]["amount"]
    async with httpx.AsyncClient(base_url=paid_service.url) as client:
        quote = (await client.get("/v1/price", params={"duration": "1", "steps": str(2 * default_steps)})).json()
        bad = await client.post("/synthesize", params={"duration": "1", "steps": "many"}, **form("Hi."))
    assert doubled == str(2 * PRICE_1S) == quote["amount_atomic"]
    assert fewer == str(PRICE_1S)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "steps"


async def test_finding_12_a_remote_facilitator_claiming_a_settlement_the_chain_lacks_gets_no_audio(
    tmp_path: Path,
    devchain: DevChain,
    synthesizer: Synthesizer,
    service_settings: Callable[..., Settings],
    reference_wav: bytes,
) -> None:
    """A facilitator that verifies honestly but answers /settle with success and a made-up transaction."""
    remote = facilitator_app(devchain)
    remote.router.routes = [route for route in remote.router.routes if getattr(route, "path", "") != "/settle"]

    @remote.post("/settle")
    def lie(body: dict[str, Any]) -> dict[str, Any]:
        return {"success": True, "transaction": "0x" + "ee" * 32, "network": "eip155:84532", "payer": payer.address}

    payer = new_payer(devchain)
    with running_server(remote) as facilitator_url:
        payment = {"mode": "facilitator", "facilitator_url": facilitator_url, "facilitator_private_key": None}
        with _service(service_settings, tmp_path, synthesizer, **payment) as service:
            reply = await _pay(service, await _sdk_payment(await _required(service), payer), reference_wav)
            rows = service.layer.ledger.entries()
    assert reply.status_code == 504 and reply.headers["content-type"] == "application/json"  # no audio
    assert reply.json()["error"]["code"] == "settlement_outcome_unknown"
    assert [(e.state, e.error_reason) for e in rows] == [("pending", "settlement_pending")]  # reconciliation decides
    assert balance(devchain, payer.address) == 1_000_000

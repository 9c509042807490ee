"""Attacks and protocol variants against the live paid service on anvil. Every attack must end in 402 (or
400 for a malformed header) with a reason code, no audio, no token transfer and no synthesis; replays and
concurrent copies of one payment are served once. Runs with the SQLite and the PostgreSQL ledger."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from x402 import x402Client
from x402.http.utils import encode_payment_signature_header
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import PaymentRequired
from x402.schemas.v1 import PaymentRequiredV1

from model.runtime.synthesizer import Synthesizer
from service.app import create_app
from service.payment.devchain.launch import DevChain
from service.settings import Settings
from tests.service.payment.support import (
    LiveService,
    Wallet,
    balance,
    decode_header,
    encode_header,
    live_service,
    malleate,
    new_payer,
    sign_authorization,
    v2_payment,
)
from tests.service.support import form

pytestmark = pytest.mark.anyio

DURATION = "2"
PRICE = 334  # ceil(2 x 167)


@dataclass
class Terms:
    """What an attacker sees in the 402 of a 2 s request, and whom it attacks."""

    accepted: dict[str, Any]
    required: dict[str, Any]
    payer: Wallet
    chain: DevChain
    short_accepted: dict[str, Any]  # the requirement of a 1 s request

    def sign(self, **overrides: Any) -> tuple[dict[str, str], str]:
        key = overrides.pop("key", self.payer.key)
        values: dict[str, Any] = {
            "token": self.accepted["asset"],
            "chain_id": 84532,
            "name": "USDC",
            "to": self.accepted["payTo"],
            "value": int(self.accepted["amount"]),
            **overrides,
        }
        return sign_authorization(key, **values)


def _signed(**overrides: Any) -> Callable[[Terms], str]:
    def build(terms: Terms) -> str:
        return v2_payment(terms.accepted, *terms.sign(**overrides))

    return build


def _forged(terms: Terms) -> str:
    attacker = Account.create()
    authorization, signature = terms.sign(key="0x" + bytes(attacker.key).hex())
    authorization["from"] = terms.payer.address  # claims the victim's funds with the attacker's signature
    return v2_payment(terms.accepted, authorization, signature)


def _shorter_duration(terms: Terms) -> str:
    return v2_payment(terms.short_accepted, *terms.sign(value=int(terms.short_accepted["amount"])))


def _malleated(terms: Terms) -> str:
    authorization, signature = terms.sign()
    return v2_payment(terms.accepted, authorization, malleate(signature))


def _truncated(terms: Terms) -> str:
    return _signed()(terms)[:-7]


def _no_authorization(terms: Terms) -> str:
    return encode_header({"x402Version": 2, "accepted": terms.accepted, "payload": {"signature": "0x" + "ab" * 65}})


def _now() -> int:
    return int(time.time())


@dataclass(frozen=True)
class Attack:
    name: str
    header: Callable[[Terms], str]
    status: int
    code: str


ATTACKS = [
    Attack("forged signature", _forged, 402, "invalid_exact_evm_payload_signature"),
    Attack("wrong amount", _signed(value=PRICE - 1), 402, "invalid_exact_evm_payload_authorization_value_mismatch"),
    Attack("amount of a shorter duration", _shorter_duration, 402, "payment_requirements_mismatch"),
    Attack("wrong payTo", _signed(to="0x" + "12" * 20), 402, "invalid_exact_evm_payload_recipient_mismatch"),
    Attack("wrong chain id", _signed(chain_id=8453), 402, "invalid_exact_evm_payload_signature"),
    Attack("wrong token", _signed(token="0x" + "34" * 20), 402, "invalid_exact_evm_payload_signature"),
    Attack("expired", _signed(valid_before=_now() - 10), 402, "invalid_exact_evm_payload_authorization_valid_before"),
    Attack(
        "too little time to synthesize and settle",
        _signed(valid_before=_now() + 30),
        402,
        "invalid_exact_evm_payload_authorization_valid_before",
    ),  # fmt: skip
    Attack(
        "valid for a day",
        _signed(valid_before=_now() + 86_400),
        402,
        "invalid_exact_evm_payload_authorization_valid_before",
    ),  # fmt: skip
    Attack(
        "not yet valid", _signed(valid_after=_now() + 3600), 402, "invalid_exact_evm_payload_authorization_valid_after"
    ),  # fmt: skip
    Attack("malleated high-s signature", _malleated, 402, "invalid_exact_evm_payload_signature"),
    Attack("truncated header", _truncated, 400, "invalid_payload"),
    Attack("garbage header", lambda terms: "this is not a payment", 400, "invalid_payload"),
    Attack("base64 of garbage", lambda terms: base64.b64encode(b"\x00\xff garbage").decode(), 400, "invalid_payload"),
    Attack("JSON that is not an object", lambda terms: encode_header([1, 2]), 400, "invalid_payload"),  # type: ignore[arg-type]
    Attack("unknown x402 version", lambda terms: encode_header({"x402Version": 7}), 400, "invalid_payload"),
    Attack("no authorization", _no_authorization, 400, "invalid_payload"),
]


async def _terms(service: LiveService, chain: DevChain, payer: Wallet) -> Terms:
    async with httpx.AsyncClient(base_url=service.url) as client:
        unpaid = await client.post("/synthesize", params={"duration": DURATION}, **form("Hi."))
        short = await client.post("/synthesize", params={"duration": "1"}, **form("Hi."))
    required = decode_header(unpaid.headers["PAYMENT-REQUIRED"])
    return Terms(
        accepted=required["accepts"][0],
        required=required,
        payer=payer,
        chain=chain,
        short_accepted=decode_header(short.headers["PAYMENT-REQUIRED"])["accepts"][0],
    )


def _error_code(reply: httpx.Response) -> str:
    body = reply.json()
    code: str = body["error"]["code"] if isinstance(body["error"], dict) else body["error"]
    return code


async def _post(
    service: LiveService, header: str, reference_wav: bytes, name: str = "PAYMENT-SIGNATURE"
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
        return await client.post(
            "/synthesize", params={"duration": DURATION}, headers={name: header}, **form("Hi.", audio=reference_wav)
        )


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
async def test_attack_gets_no_audio_and_moves_no_money(
    attack: Attack, paid_service: LiveService, devchain: DevChain, reference_wav: bytes
) -> None:
    payer = new_payer(devchain)
    terms = await _terms(paid_service, devchain, payer)
    before = (balance(devchain, payer.address), balance(devchain, devchain.facts.pay_to))
    completed = paid_service.completed_requests()

    reply = await _post(paid_service, attack.header(terms), reference_wav)

    assert reply.status_code == attack.status, reply.text
    assert _error_code(reply) == attack.code
    assert reply.headers["content-type"] == "application/json"  # no audio
    if attack.status == 402:
        assert "PAYMENT-REQUIRED" in reply.headers
        assert reply.json()["accepts"][0]["maxAmountRequired"] == str(PRICE)
    assert (balance(devchain, payer.address), balance(devchain, devchain.facts.pay_to)) == before
    assert paid_service.completed_requests() == completed  # the synthesis never ran
    assert not [e for e in paid_service.layer.ledger.entries() if e.payer == payer.address.lower()]


async def test_insufficient_balance_is_refused(
    paid_service: LiveService, devchain: DevChain, reference_wav: bytes
) -> None:
    broke = new_payer(devchain, amount_atomic=PRICE - 1)
    terms = await _terms(paid_service, devchain, broke)
    reply = await _post(paid_service, v2_payment(terms.accepted, *terms.sign()), reference_wav)
    assert reply.status_code == 402
    assert _error_code(reply) == "invalid_exact_evm_insufficient_balance"
    assert balance(devchain, broke.address) == PRICE - 1


async def _sdk_payment(required: dict[str, Any], payer: Wallet) -> str:
    client = x402Client()
    register_exact_evm_client(client, EthAccountSigner(Account.from_key(payer.key)), networks="eip155:84532")
    client.set_spend_controls({"allowed_assets": True})
    payload = await client.create_payment_payload(PaymentRequired.model_validate(required))
    return encode_payment_signature_header(payload)


async def test_a_payment_is_served_once_then_refused_even_malleated(
    paid_service: LiveService, devchain: DevChain, reference_wav: bytes
) -> None:
    payer = new_payer(devchain)
    terms = await _terms(paid_service, devchain, payer)
    header = await _sdk_payment(terms.required, payer)

    first = await _post(paid_service, header, reference_wav)
    replay = await _post(paid_service, header, reference_wav)
    payload = decode_header(header)
    payload["payload"]["signature"] = malleate(payload["payload"]["signature"])
    twin = await _post(paid_service, encode_header(payload), reference_wav)

    assert first.status_code == 200 and first.headers["content-type"] == "audio/wav"
    assert (replay.status_code, _error_code(replay)) == (402, "invalid_exact_evm_nonce_already_used")
    # The high-s twin is refused by the local recovery already, as USDC would refuse it on chain.
    assert (twin.status_code, _error_code(twin)) == (402, "invalid_exact_evm_payload_signature")
    assert balance(devchain, payer.address) == 1_000_000 - PRICE


async def test_twenty_concurrent_copies_of_one_payment_are_served_and_settled_once(
    paid_service: LiveService, devchain: DevChain, reference_wav: bytes
) -> None:
    payer = new_payer(devchain)
    terms = await _terms(paid_service, devchain, payer)
    header = await _sdk_payment(terms.required, payer)
    pay_to_before = balance(devchain, devchain.facts.pay_to)
    completed = paid_service.completed_requests()

    replies = await asyncio.gather(*(_post(paid_service, header, reference_wav) for _ in range(20)))

    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [200] + [402] * 19
    assert {_error_code(r) for r in replies if r.status_code == 402} == {"invalid_exact_evm_nonce_already_used"}
    assert paid_service.completed_requests() == completed + 1  # the synthesis ran once
    assert balance(devchain, payer.address) == 1_000_000 - PRICE
    assert balance(devchain, devchain.facts.pay_to) == pay_to_before + PRICE
    [entry] = [e for e in paid_service.layer.ledger.entries() if e.payer == payer.address.lower()]
    assert entry.state == "settled" and entry.tx_hash


async def test_v1_payment_in_x_payment_header_is_accepted(
    paid_service: LiveService, devchain: DevChain, reference_wav: bytes
) -> None:
    payer = new_payer(devchain)
    async with httpx.AsyncClient(base_url=paid_service.url) as client:
        unpaid = await client.post("/synthesize", params={"duration": DURATION}, **form("Hi."))
    legacy_client = x402Client()
    register_exact_evm_client(legacy_client, EthAccountSigner(Account.from_key(payer.key)))
    legacy_client.set_spend_controls({"allowed_assets": True})
    v1_required = PaymentRequiredV1.model_validate({k: v for k, v in unpaid.json().items() if k != "message"})
    payload = await legacy_client.create_payment_payload(v1_required)
    assert payload.x402_version == 1

    reply = await _post(paid_service, encode_payment_signature_header(payload), reference_wav, name="X-PAYMENT")

    assert reply.status_code == 200, reply.text
    legacy_receipt = decode_header(reply.headers["X-PAYMENT-RESPONSE"])
    assert legacy_receipt["success"] is True and legacy_receipt["network"] == "base-sepolia"
    assert legacy_receipt["transaction"] == decode_header(reply.headers["PAYMENT-RESPONSE"])["transaction"]
    assert balance(devchain, payer.address) == 1_000_000 - PRICE


async def test_v1_payment_is_refused_where_only_v2_is_accepted(
    tmp_path: Path,
    devchain: DevChain,
    synthesizer: Synthesizer,
    service_settings: Callable[..., Settings],
    reference_wav: bytes,
) -> None:
    settings = service_settings(f"sqlite:///{tmp_path / 'v2only.sqlite3'}", payment={"accept_v1": False})
    payer = new_payer(devchain)
    with live_service(create_app(settings, synthesizers=[synthesizer])) as service:
        terms = await _terms(service, devchain, payer)
        authorization, signature = terms.sign()
        v1 = {
            "x402Version": 1,
            "scheme": "exact",
            "network": "base-sepolia",
            "payload": {"signature": signature, "authorization": authorization},
        }
        reply = await _post(service, encode_header(v1), reference_wav, name="X-PAYMENT")
    assert reply.status_code == 402
    assert _error_code(reply) == "invalid_x402_version"
    assert balance(devchain, payer.address) == 1_000_000


async def test_both_payment_headers_at_once_are_refused(paid_service: LiveService, reference_wav: bytes) -> None:
    async with httpx.AsyncClient(base_url=paid_service.url) as client:
        reply = await client.post(
            "/synthesize",
            params={"duration": DURATION},
            headers={"PAYMENT-SIGNATURE": "e30=", "X-PAYMENT": "e30="},
            **form("Hi.", audio=reference_wav),
        )
    assert reply.status_code == 400 and _error_code(reply) == "invalid_payload"


async def test_bad_duration_or_missing_text_is_a_clear_4xx_before_payment(paid_service: LiveService) -> None:
    async with httpx.AsyncClient(base_url=paid_service.url) as client:
        nan = await client.post("/synthesize", params={"duration": "nan"}, **form("Hi."))
        long = await client.post("/synthesize", params={"duration": "31"}, **form("Hi."))
        no_text = await client.post("/synthesize", **form(text=None, audio=b"RIFF"))
        bad_json = await client.post(
            "/v1/audio/speech", content=b"{not json", headers={"content-type": "application/json"}
        )
        no_input = await client.post("/v1/audio/speech", json={"voice": "default"})
    assert (nan.status_code, nan.json()["error"]["field"]) == (422, "duration")
    assert (long.status_code, long.json()["error"]["code"]) == (422, "out_of_range")
    assert (no_text.status_code, no_text.json()["error"]["field"]) == (422, "text")
    assert bad_json.status_code == 400
    assert (no_input.status_code, no_input.json()["error"]["field"]) == (422, "input")


async def test_other_spellings_of_a_paid_path_are_refused_before_payment(
    paid_service: LiveService, devchain: DevChain, reference_wav: bytes
) -> None:
    payer = new_payer(devchain)
    terms = await _terms(paid_service, devchain, payer)
    header = await _sdk_payment(terms.required, payer)
    async with httpx.AsyncClient(base_url=paid_service.url, follow_redirects=False) as client:
        replies = [
            await client.post(
                paid_service.url + path,  # absolute: httpx would resolve "//synthesize" against the base URL
                params={"duration": DURATION},
                headers={"PAYMENT-SIGNATURE": header},
                **form("Hi.", audio=reference_wav),
            )  # fmt: skip
            for path in ("/synthesize/", "//synthesize", "/Synthesize")
        ]
    assert [reply.status_code for reply in replies] == [404, 404, 404]
    assert all("/synthesize" in reply.json()["error"]["message"] for reply in replies)
    assert balance(devchain, payer.address) == 1_000_000  # the redirect was never paid for

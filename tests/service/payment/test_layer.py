"""The paid service end to end on a real anvil chain: 402 requirements, paying with the official x402 client,
balances and ledger rows, free routes, discovery, quotes, CORS and the startup checks. Runs once with the
SQLite ledger and once with PostgreSQL (`paid_service` is parametrized)."""

from __future__ import annotations

import io
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile as sf
from asgi_lifespan import LifespanManager

from model.errors import InputError
from service.app import create_app
from service.payment.devchain.launch import DevChain
from service.payment.layer import PaymentConfigError
from service.settings import Settings
from tests.service.payment.support import (
    LiveService,
    balance,
    decode_header,
    new_payer,
    paying_client,
    payment_settings,
)
from tests.service.support import form

pytestmark = pytest.mark.anyio


async def test_unpaid_request_gets_402_with_v2_and_v1_requirements_priced_by_duration(
    paid_service: LiveService, devchain: DevChain
) -> None:
    facts = devchain.facts
    async with httpx.AsyncClient(base_url=paid_service.url) as client:
        for duration, amount in (("1", "167"), ("5", "835"), ("2.5", "418")):
            reply = await client.post("/synthesize", params={"duration": duration}, **form("Hello."))
            assert reply.status_code == 402
            assert reply.headers["cache-control"] == "no-store"
            required = decode_header(reply.headers["PAYMENT-REQUIRED"])
            assert required["x402Version"] == 2
            assert required["resource"]["mimeType"] == "audio/wav"
            [accepted] = required["accepts"]
            assert accepted == {
                "scheme": "exact",
                "network": "eip155:84532",
                "asset": facts.token_address,
                "amount": amount,
                "payTo": facts.pay_to,
                "maxTimeoutSeconds": 300,
                "extra": {"name": "USDC", "version": "2"},
            }
            body = reply.json()
            assert body["x402Version"] == 1
            assert body["error"] == "payment_required"
            [legacy] = body["accepts"]
            assert legacy["network"] == "base-sepolia"
            assert legacy["maxAmountRequired"] == amount
            assert legacy["payTo"] == facts.pay_to and legacy["asset"] == facts.token_address
            assert legacy["resource"].endswith(f"/synthesize?duration={duration}")


async def test_paying_with_the_official_client_returns_audio_and_moves_exactly_the_price(
    paid_service: LiveService, devchain: DevChain, reference_wav: bytes
) -> None:
    payer = new_payer(devchain)
    pay_to_before, payer_before = balance(devchain, devchain.facts.pay_to), balance(devchain, payer.address)
    async with paying_client(paid_service.url, payer) as client:
        reply = await client.post("/synthesize", params={"duration": "2"}, **form("Paid speech.", audio=reference_wav))
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "audio/wav"
    audio, rate_hz = sf.read(io.BytesIO(reply.content))
    assert rate_hz == 24_000 and len(audio) == math.ceil(2 * 7.5) * 3200
    receipt = decode_header(reply.headers["PAYMENT-RESPONSE"])
    assert receipt["success"] is True and receipt["network"] == "eip155:84532"
    assert receipt["payer"].lower() == payer.address.lower()
    assert balance(devchain, payer.address) == payer_before - 334
    assert balance(devchain, devchain.facts.pay_to) == pay_to_before + 334
    [entry] = [e for e in paid_service.layer.ledger.entries() if e.payer == payer.address.lower()]
    assert entry.state == "settled"
    assert entry.tx_hash == receipt["transaction"]
    assert entry.amount_atomic == 334 and entry.duration_s == "2"
    assert entry.route == "POST /synthesize"
    assert entry.request_id == reply.headers["x-request-id"]


async def test_without_duration_the_price_comes_from_the_text_and_synthesis_uses_that_duration(
    paid_service: LiveService, devchain: DevChain, reference_wav: bytes
) -> None:
    text = "A request without a duration is priced from its text."
    async with httpx.AsyncClient(base_url=paid_service.url) as plain:
        quote = (await plain.get("/v1/price", params={"text": text})).json()
        unpaid = await plain.post("/synthesize", **form(text, audio=reference_wav))
    assert quote["duration_source"] == "text"
    [accepted] = decode_header(unpaid.headers["PAYMENT-REQUIRED"])["accepts"]
    assert accepted["amount"] == quote["amount_atomic"]
    assert int(quote["amount_atomic"]) == math.ceil(Decimal(quote["duration_s"]) * 167)

    payer = new_payer(devchain)
    async with paying_client(paid_service.url, payer) as client:
        reply = await client.post("/synthesize", **form(text, audio=reference_wav))
    assert reply.status_code == 200, reply.text
    assert Decimal(reply.headers["x-smalltts-duration-s"]) == Decimal(quote["duration_s"])
    [entry] = [e for e in paid_service.layer.ledger.entries() if e.payer == payer.address.lower()]
    assert entry.duration_s == quote["duration_s"] and entry.state == "settled"


async def test_openai_speech_route_is_paid_for_the_duration_it_synthesizes(
    paid_service: LiveService, devchain: DevChain, reference_wav: bytes
) -> None:
    async with httpx.AsyncClient(base_url=paid_service.url) as plain:
        created = await plain.post("/v1/voices", **form(text=None, audio=reference_wav))  # a free route
        assert created.status_code == 201, created.text
        voice_id = created.json()["id"]
        body: dict[str, Any] = {"input": "Speech for the OpenAI route.", "voice": voice_id, "response_format": "wav"}
        unpaid = await plain.post("/v1/audio/speech", json={**body, "speed": 2.0})
        quote = (await plain.get("/v1/price", params={"text": body["input"]})).json()
    assert unpaid.status_code == 402
    [accepted] = decode_header(unpaid.headers["PAYMENT-REQUIRED"])["accepts"]
    half = Decimal(quote["duration_s"]) / 2  # speed 2 halves the estimate, and the price with it
    assert abs(int(accepted["amount"]) - half * 167) <= 2

    payer = new_payer(devchain)
    async with paying_client(paid_service.url, payer) as client:
        reply = await client.post("/v1/audio/speech", json={**body, "duration": 1.5})
    assert reply.status_code == 200, reply.text
    assert Decimal(reply.headers["x-smalltts-duration-s"]) == Decimal("1.5")
    assert decode_header(reply.headers["PAYMENT-RESPONSE"])["success"] is True
    [entry] = [e for e in paid_service.layer.ledger.entries() if e.payer == payer.address.lower()]
    assert (entry.route, entry.amount_atomic, entry.state) == ("POST /v1/audio/speech", 251, "settled")


async def test_free_routes_stay_free(paid_service: LiveService, reference_wav: bytes) -> None:
    async with httpx.AsyncClient(base_url=paid_service.url) as client:
        voice_id = (await client.post("/v1/voices", **form(text=None, audio=reference_wav))).json()["id"]
        free = ("/health", "/ready", "/metrics", "/v1/voices", f"/v1/voices/{voice_id}", f"/v1/voices/{voice_id}/audio",
                "/docs", "/openapi.json", "/v1/config")  # fmt: skip
        for path in free:
            reply = await client.get(path)
            assert reply.status_code == 200, (path, reply.status_code)
            assert "payment-required" not in reply.headers


async def test_discovery_and_quote(paid_service: LiveService, devchain: DevChain) -> None:
    async with httpx.AsyncClient(base_url=paid_service.url) as client:
        discovery = (await client.get("/.well-known/x402")).json()
        quote = (await client.get("/v1/price", params={"duration": "5"})).json()
        bad = await client.get("/v1/price", params={"duration": "nan"})
        missing = await client.get("/v1/price")
    assert discovery["version"] == 1
    assert discovery["resources"] == [f"{paid_service.url}/synthesize", f"{paid_service.url}/v1/audio/speech"]
    assert "$0.01/min" in discovery["instructions"]
    assert discovery["payment"]["pay_to"] == devchain.facts.pay_to
    assert discovery["payment"]["price_per_second_atomic"] == 167
    assert (quote["amount_atomic"], quote["amount_usd"], quote["duration_s"]) == ("835", "0.000835", "5")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "duration"
    assert missing.status_code == 422


async def test_cors_allows_the_payment_headers_and_exposes_the_receipts(paid_service: LiveService) -> None:
    async with httpx.AsyncClient(base_url=paid_service.url) as client:
        preflight = await client.options(
            "/synthesize",
            headers={
                "Origin": "http://localhost:5173",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "payment-signature,x-payment,content-type",
            },
        )
        unpaid = await client.post(
            "/synthesize", params={"duration": "1"}, headers={"Origin": "http://localhost:5173"}, **form("Hi.")
        )
    assert preflight.status_code == 200
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "payment-signature" in allowed and "x-payment" in allowed
    exposed = {h.strip().lower() for h in unpaid.headers["access-control-expose-headers"].split(",")}
    assert {"payment-required", "payment-response", "x-payment-response"} <= exposed
    assert {"x-smalltts-duration-s", "x-smalltts-seed", "x-request-id"} <= exposed  # the page reads these


async def test_startup_refuses_a_rpc_on_the_wrong_chain(
    tmp_path: Path, devchain: DevChain, tiny_model_dir: Path
) -> None:
    # Base mainnet's chain id is 8453; the dev chain answers 84532.
    settings = Settings(
        model_dir=tiny_model_dir,
        data_dir=tmp_path,
        builtin_voice=False,
        payment=payment_settings(
            devchain, f"sqlite:///{tmp_path / 'l.sqlite3'}", network="base", token_name="USD Coin"
        ),
    )
    app = create_app(settings)
    with pytest.raises(PaymentConfigError, match="chain id 84532, but network base is chain id 8453"):
        async with LifespanManager(app, startup_timeout=120):
            pass


def test_settings_that_cannot_take_payments_refuse_to_build(tmp_path: Path, devchain: DevChain) -> None:
    ledger = f"sqlite:///{tmp_path / 'l.sqlite3'}"
    cases = [
        ({"pay_to": None}, "PAY_TO"),
        ({"facilitator_private_key": None}, "FACILITATOR_PRIVATE_KEY"),
        ({"asset": None}, "ASSET"),
        ({"mode": "facilitator"}, "FACILITATOR_URL"),
        ({"min_validity_s": 100}, "MIN_VALIDITY_S"),  # below request_timeout_s (120) + confirmation (20)
    ]
    for overrides, field in cases:
        settings = Settings(data_dir=tmp_path, payment=payment_settings(devchain, ledger, **overrides))
        with pytest.raises(PaymentConfigError) as raised:
            create_app(settings)
        assert raised.value.field == f"SMALLTTS_PAYMENT__{field}"
        assert isinstance(raised.value, InputError)  # the CLI prints it as one line

"""The free payment routes on a bare app, with no chain: discovery and quotes from the terms and the pricing.
(tests/service/payment/test_layer.py checks the same routes once on the full paid service.)"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from service.errors import install_error_handlers
from service.payment.networks import PaymentTerms
from service.payment.paid_routes import PAID_ROUTES
from service.payment.pricing import Pricing
from service.payment.routes import PaymentInfo, build_payment_router
from tests.service.payment.test_duration import RESOLVER  # 10 characters a second, 0.5-30 s
from tests.service.payment.test_header import TERMS

pytestmark = pytest.mark.anyio


def _client(terms: PaymentTerms | None, public_url: str | None = None) -> httpx.AsyncClient:
    info = PaymentInfo(
        mode="local" if terms else "off",
        pricing=Pricing(Decimal("0.01"), decimals=6),  # 167 atomic units a second, rounded up
        terms=terms,
        routes=PAID_ROUTES,
        durations=RESOLVER,
        public_url=public_url,
        included_steps=lambda: 4,
    )
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(build_payment_router(info))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_discovery_lists_the_paid_resources_at_the_public_url_and_the_terms() -> None:
    async with _client(TERMS, public_url="https://tts.example/") as client:
        discovery = (await client.get("/.well-known/x402")).json()
    assert discovery["resources"] == ["https://tts.example/synthesize", "https://tts.example/v1/audio/speech"]
    payment = discovery["payment"]
    assert (payment["network"], payment["pay_to"], payment["quote"]) == (
        TERMS.network.caip2,
        TERMS.pay_to,
        "https://tts.example/v1/price",
    )
    assert payment["price_per_second_atomic"] == 167
    assert "$0.01/min" in discovery["instructions"]


async def test_a_quote_by_duration_by_text_and_for_more_steps() -> None:
    async with _client(TERMS) as client:
        by_duration = (await client.get("/v1/price", params={"duration": "5"})).json()
        by_text = (await client.get("/v1/price", params={"text": "a" * 25})).json()
        more_steps = (await client.get("/v1/price", params={"duration": "5", "steps": "8"})).json()
    assert (by_duration["amount_atomic"], by_duration["amount_usd"], by_duration["duration_source"]) == (
        "835",
        "0.000835",
        "duration",
    )
    assert (by_text["duration_s"], by_text["duration_source"]) == ("2.5", "text")
    assert int(more_steps["amount_atomic"]) == 2 * 835  # twice the model's default steps, twice the price


@pytest.mark.parametrize("params", [{}, {"duration": "nan"}, {"duration": "99"}, {"text": "a" * 101}])
async def test_what_cannot_be_priced_is_a_4xx(params: dict[str, str]) -> None:
    async with _client(TERMS) as client:
        reply = await client.get("/v1/price", params=params)
    assert 400 <= reply.status_code < 500
    assert reply.json()["error"]["field"] in ("duration", "text")


async def test_with_payments_off_everything_is_free() -> None:
    async with _client(None) as client:
        quote = (await client.get("/v1/price", params={"duration": "5"})).json()
        discovery = (await client.get("/.well-known/x402")).json()
    assert (quote["amount_atomic"], quote["network"], quote["payment_mode"]) == ("0", None, "off")
    assert "free" in discovery["instructions"] and discovery["payment"]["network"] is None

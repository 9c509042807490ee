"""The payment layer installed around an app: with payments off, only CORS and the free routes, and a warning."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from service.app import create_app
from service.payment.install import RESPONSE_HEADERS, install_payment
from service.payment.layer import AppLimits
from service.payment.pricing import DurationBounds
from service.payment.settings import PaymentSettings
from service.settings import Settings
from tests.service.support import form

pytestmark = pytest.mark.anyio


async def test_payments_off_serves_free_and_says_so(
    tmp_path: Path, tiny_model_dir: Path, caplog: pytest.LogCaptureFixture, reference_wav: bytes
) -> None:
    from service.payment.settings import PaymentSettings

    settings = Settings(
        model_dir=tiny_model_dir, data_dir=tmp_path, builtin_voice=False, payment=PaymentSettings(mode="off")
    )
    with caplog.at_level("WARNING", logger="smalltts.payment"):
        app = create_app(settings)
    assert "PAYMENTS ARE OFF" in caplog.text
    async with LifespanManager(app, startup_timeout=120) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            reply = await client.post("/synthesize", params={"duration": "1"}, **form("Free.", audio=reference_wav))
            quote = (await client.get("/v1/price", params={"duration": "3"})).json()
    assert reply.status_code == 200 and reply.headers["content-type"] == "audio/wav"
    assert quote["payment_mode"] == "off" and quote["amount_atomic"] == "0"


async def test_payments_off_still_answers_cors_preflights_for_the_payment_headers(tmp_path: Path) -> None:
    limits = AppLimits(
        bounds=DurationBounds(0.5, 30.0), request_timeout_s=30.0, max_form_bytes=10_000, max_json_bytes=10_000,
        max_text_chars=100, max_steps=32, data_dir=tmp_path,
    )  # fmt: skip
    app = FastAPI()
    payment = PaymentSettings(mode="off", price_per_minute_usd=Decimal("0.01"))
    assert install_payment(app, payment, limits, estimate_duration_s=lambda text: len(text) / 10) is None
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        preflight = await client.options(
            "/synthesize",
            headers={
                "Origin": "https://page.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "PAYMENT-SIGNATURE, X-PAYMENT",
            },
        )
        quote = await client.get("/v1/price", params={"text": "a" * 20}, headers={"Origin": "https://page.example"})
    assert preflight.status_code == 200
    assert {"payment-signature", "x-payment"} <= set(
        preflight.headers["access-control-allow-headers"].lower().split(", ")
    )
    assert (quote.json()["duration_s"], quote.json()["amount_atomic"]) == ("2", "0")
    exposed = quote.headers["access-control-expose-headers"].lower()
    assert all(name.lower() in exposed for name in RESPONSE_HEADERS)

"""Free payment routes: the x402 discovery document and a price quote.

GET /.well-known/x402                    {version: 1, resources, instructions, payment: {...}}
GET /v1/price?duration=3                 the exact amount a paid request for 3 s will ask
GET /v1/price?text=Hello%20there         the same for a request without duration (estimated from text)
GET /v1/price?duration=3&steps=8         more sampler steps than the model's default cost proportionally more
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from model.errors import InputError
from service.payment.duration import DurationResolver
from service.payment.networks import PaymentTerms
from service.payment.paid_routes import PaidRoute
from service.payment.pricing import Pricing, format_duration, parse_duration, parse_steps
from service.payment.settings import PaymentMode


@dataclass(frozen=True)
class PaymentInfo:
    """What the free routes tell clients; `terms` is None when payments are off."""

    mode: PaymentMode
    pricing: Pricing
    terms: PaymentTerms | None
    routes: Sequence[PaidRoute]
    durations: DurationResolver  # the paid routes' own duration rules, so a quote is what the 402 asks
    public_url: str | None
    included_steps: Callable[[], int | None]  # the model's default steps: more cost proportionally more


class PriceQuote(BaseModel):
    duration_s: str = Field(description="The duration that is priced (and synthesized), in seconds.")
    duration_source: Literal["duration", "text"] = Field(description="Given, or estimated from the text.")
    steps: int | None = Field(description="Sampler steps priced (null: the model's default).")
    amount_atomic: str = Field(description="Token units to authorize: the x402 `amount` (USDC has 6 decimals).")
    amount_usd: str
    price_per_minute_usd: str
    price_per_second_atomic: int
    min_charge_atomic: int = Field(description="No paid request costs less than this.")
    payment_mode: PaymentMode
    network: str | None = Field(description="CAIP-2 network id; null when payments are off.")
    asset: str | None
    pay_to: str | None


class PaymentTermsInfo(BaseModel):
    mode: PaymentMode
    network: str | None
    network_name: str | None
    asset: str | None
    token_name: str | None
    pay_to: str | None
    price_per_minute_usd: str
    price_per_second_atomic: int
    max_timeout_seconds: int | None
    quote: str


class DiscoveryDocument(BaseModel):
    version: int = 1
    resources: list[str]
    instructions: str
    payment: PaymentTermsInfo


def _instructions(info: PaymentInfo, base_url: str) -> str:
    price = info.pricing.price_per_minute_usd.normalize()
    if info.terms is None:
        pricing = "Pricing: free (payments are switched off on this server)."
    else:
        pricing = (
            f"Pricing: ${price}/min of generated audio ({info.pricing.price_per_second_atomic} atomic USDC per second, "
            f"rounded up), paid per request with x402 (exact scheme, USDC on {info.terms.network.name}, "
            f"{info.terms.network.caip2})."
        )
    return (
        "# smalltts\n\n"
        "Expressive voice-cloning text-to-speech.\n\n"
        "POST /synthesize?duration=N with multipart audio + text. "
        "POST /v1/audio/speech with an OpenAI-style JSON body. "
        "Without `duration` the price is computed from the text's estimated duration.\n\n"
        f"{pricing}\n\n"
        f"Quote: GET {base_url}/v1/price?duration=N (or ?text=...). An unpaid request answers 402 with the exact "
        "requirements (PAYMENT-REQUIRED header, x402 v2; the body has the v1 form). Sign them and repeat the "
        "request with PAYMENT-SIGNATURE (v2) or X-PAYMENT (v1); the receipt comes back in PAYMENT-RESPONSE."
    )


def build_payment_router(info: PaymentInfo) -> APIRouter:
    router = APIRouter(tags=["payment"])

    def base_url(request: Request) -> str:
        return (info.public_url or str(request.base_url)).rstrip("/")

    @router.get("/.well-known/x402", operation_id="payment-get_discovery", response_model=DiscoveryDocument)
    async def get_discovery(request: Request) -> DiscoveryDocument:
        """x402 discovery: the paid resources, their price and how to pay."""
        url = base_url(request)
        terms = info.terms
        return DiscoveryDocument(
            resources=[f"{url}{route.path}" for route in info.routes],
            instructions=_instructions(info, url),
            payment=PaymentTermsInfo(
                mode=info.mode,
                network=terms.network.caip2 if terms else None,
                network_name=terms.network.name if terms else None,
                asset=terms.asset if terms else None,
                token_name=terms.token_name if terms else None,
                pay_to=terms.pay_to if terms else None,
                price_per_minute_usd=str(info.pricing.price_per_minute_usd),
                price_per_second_atomic=info.pricing.price_per_second_atomic,
                max_timeout_seconds=terms.max_timeout_s if terms else None,
                quote=f"{url}/v1/price",
            ),
        )

    @router.get("/v1/price", operation_id="payment-get_price", response_model=PriceQuote)
    async def get_price(
        duration: Annotated[str | None, Query(description="Seconds of audio to price.")] = None,
        text: Annotated[str | None, Query(description="Text to estimate the duration from.")] = None,
        steps: Annotated[str | None, Query(description="Sampler steps (default: the model's own).")] = None,
    ) -> PriceQuote:
        """Price of a paid request, without paying: the amount the 402 will ask for."""
        durations = info.durations
        if text is not None:
            durations.check_text(text, field="text")
        priced_steps = parse_steps(steps, durations.max_steps) if steps is not None else None
        if duration is not None:
            duration_s, source = parse_duration(duration, durations.bounds), "duration"
        elif text is not None and text.strip():
            duration_s, source = await durations.estimate(text, field="text"), "text"
        else:
            raise InputError("pass duration (seconds) or text to price", field="duration", code="missing")
        amount = info.pricing.amount_atomic(duration_s, priced_steps, info.included_steps()) if info.terms else 0
        return PriceQuote(
            duration_s=format_duration(duration_s),
            duration_source=source,  # type: ignore[arg-type]
            steps=priced_steps,
            amount_atomic=str(amount),
            amount_usd=str(info.pricing.amount_usd(amount).normalize() if amount else Decimal(0)),
            price_per_minute_usd=str(info.pricing.price_per_minute_usd),
            price_per_second_atomic=info.pricing.price_per_second_atomic,
            min_charge_atomic=info.pricing.min_charge_atomic if info.terms else 0,
            payment_mode=info.mode,
            network=info.terms.network.caip2 if info.terms else None,
            asset=info.terms.asset if info.terms else None,
            pay_to=info.terms.pay_to if info.terms else None,
        )

    return router

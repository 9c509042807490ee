"""The payment layer put around the paid routes of an app, by one call in create_app (handlers stay untouched).

    install_service_payment(app, settings)

installs, outermost first: CORS (payment headers allowed and exposed) -> PaymentEdge (duration, header shape,
v1, 503 on outages) -> the SDK's PaymentMiddlewareASGI (verify -> handler -> settle) -> AnswerCapture -> the
app; plus the free routes /.well-known/x402 and /v1/price. It returns the PaymentLayer, whose `running()`
create_app's lifespan enters (startup checks, reconciliation). With mode "off" only CORS and the free routes
are installed, and a warning says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from x402.http.middleware.fastapi import PaymentMiddlewareASGI

from service.payment.duration import DurationResolver
from service.payment.held import AnswerCapture
from service.payment.layer import AppLimits, PaymentLayer
from service.payment.middleware import PaymentEdge
from service.payment.paid_routes import PAID_ROUTES
from service.payment.pricing import DurationBounds, Pricing
from service.payment.routes import PaymentInfo, build_payment_router
from service.payment.settings import PaymentSettings
from service.synthesis import AUDIO_HEADERS

if TYPE_CHECKING:
    from service.settings import Settings as ServiceSettings

logger = logging.getLogger("smalltts.payment")

REQUEST_HEADERS = ("Content-Type", "Authorization", "X-Request-Id", "PAYMENT-SIGNATURE", "X-PAYMENT",
                   "Access-Control-Expose-Headers")  # fmt: skip
RESPONSE_HEADERS = ("PAYMENT-REQUIRED", "PAYMENT-RESPONSE", "X-PAYMENT-RESPONSE", "X-Request-Id", "Retry-After")


def install_payment(
    app: FastAPI,
    payment: PaymentSettings,
    limits: AppLimits,
    estimate_duration_s: Callable[[str], float],
) -> PaymentLayer | None:
    """Put the payment layer around the paid routes of `app` (see the module docstring).

    Raises:
        PaymentConfigError: the settings cannot work (checked here, without I/O; chain checks at startup).
    """
    layer = PaymentLayer(payment, limits) if payment.mode != "off" else None
    if layer is not None:
        layer.included_steps = lambda: _included_steps(app)
    durations = DurationResolver(
        bounds=limits.bounds,
        estimate_duration_s=estimate_duration_s,
        max_body_bytes=limits.body_limits(),
        max_text_chars=limits.max_text_chars,
        max_steps=limits.max_steps,
    )
    app.include_router(
        build_payment_router(
            PaymentInfo(
                mode=payment.mode,
                pricing=layer.pricing if layer else Pricing(payment.price_per_minute_usd, 6, payment.min_charge_usd),
                terms=layer.terms if layer else None,
                routes=PAID_ROUTES,
                durations=durations,
                public_url=payment.public_url,
                included_steps=lambda: _included_steps(app),
            )
        )
    )
    if layer is None:
        logger.warning(
            "PAYMENTS ARE OFF (SMALLTTS_PAYMENT__MODE=off): %s are served for free to anyone",
            ", ".join(route.key for route in PAID_ROUTES),
        )
    else:
        app.add_middleware(AnswerCapture, paths=[route.path for route in PAID_ROUTES])
        app.add_middleware(PaymentMiddlewareASGI, routes=layer.route_configs(), server=layer.server)
        app.add_middleware(
            PaymentEdge,
            routes=PAID_ROUTES,
            terms=layer.terms,
            durations=durations,
            requirements_for=layer.requirements_for,
            facilitator=layer.facilitator,
            accept_v1=payment.accept_v1,
            vault=layer.vault,
            client_limit=layer.client_limit,
        )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=list(REQUEST_HEADERS),
        # The page reads the receipt and the audio's facts (duration, seed, warnings) from these.
        expose_headers=[*RESPONSE_HEADERS, *AUDIO_HEADERS],
    )
    return layer


def _included_steps(app: FastAPI) -> int | None:
    """The model's default sampler steps once the service is up (None before: nothing is served then)."""
    service = getattr(app.state, "service", None)
    limits = getattr(service, "limits", None)
    steps = getattr(limits, "default_steps", None)
    return steps if isinstance(steps, int) else None


def estimate_text_duration_s(text: str) -> float:
    """Seconds of speech for `text`, as the service estimates it (model.text), for pricing without duration."""
    from model.text import estimate_duration_s, tokenize  # espeak-ng loads on first use, not at import

    return float(estimate_duration_s(tokenize(text)))


def install_service_payment(app: FastAPI, settings: ServiceSettings) -> PaymentLayer | None:
    """The one call in create_app: the payment layer with the service's own limits and duration estimate."""
    limits = AppLimits(
        bounds=DurationBounds(settings.min_duration_s, settings.max_duration_s),
        request_timeout_s=settings.request_timeout_s,
        max_form_bytes=settings.max_body_bytes,
        max_json_bytes=settings.max_json_bytes,
        max_text_chars=settings.max_text_chars,
        max_steps=settings.max_steps,
        data_dir=settings.data_dir,
    )
    return install_payment(app, settings.payment, limits, estimate_text_duration_s)

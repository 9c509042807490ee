"""PaymentEdge: the ASGI middleware in front of the SDK's payment middleware, on paid routes only.

    CORS -> PaymentEdge -> x402 PaymentMiddlewareASGI (verify, handler, settle) -> routes

On the way in it
  * fixes the duration being paid for: the `duration` query value, else an estimate from the request's text
    (the buffered form or JSON body), rounded up to 0.01 s; the canonical value is written back into the query
    string, so the SDK's price callable and the handler both read the very same number;
  * checks the payment header's shape (base64, JSON, x402 version, EIP-3009 fields) and answers 400
    `invalid_payload` for junk, which the SDK would silently treat as "no payment";
  * accepts x402 v1 (`X-PAYMENT`): the authorization is the same EIP-3009 signature in both versions, so the v1
    payload is re-wrapped as a v2 payload whose `accepted` is this request's own requirement, and the SDK
    verifies it like any other (or refuses it: 402 `invalid_x402_version` when v1 is switched off);
  * publishes the request's PaymentAttempt for the facilitator adapter.
On the way out it
  * turns a 402 caused by an outage (RPC, facilitator, ledger) into 503, so that an outage never looks like
    a bad payment and never yields free audio;
  * gives every 402 the x402 v1 body ({x402Version: 1, error, accepts}) next to the SDK's v2 PAYMENT-REQUIRED
    header, with a reason code in `error` and an explanation in `message`;
  * copies PAYMENT-RESPONSE to X-PAYMENT-RESPONSE for clients that paid with X-PAYMENT;
  * releases the reservation of a paid request that failed (4xx/5xx, an exception, a client gone away).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qsl

import anyio
from pydantic import ValidationError
from starlette.datastructures import Headers, MutableHeaders
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from x402.http.utils import (
    decode_payment_required_header,
    decode_payment_response_header,
    encode_payment_required_header,
    encode_payment_signature_header,
)
from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements, ResourceInfo
from x402.schemas.v1 import PaymentPayloadV1

from model.errors import InputError
from service.errors import error_response
from service.payment.attempt import PaymentAttempt, current_attempt
from service.payment.authorization import parse_authorization
from service.payment.facilitator import (
    ERR_PAYMENT_UNAVAILABLE,
    ERR_RATE_LIMITED,
    GuardedFacilitator,
)
from service.payment.held import collect_held_answer, hold_answer, outcome_is_unknown, outcome_unknown_messages
from service.payment.networks import PaymentTerms
from service.payment.pricing import DurationBounds, format_duration, parse_duration, parse_steps, quantize_estimate
from service.payment.ratelimit import RateLimiter
from service.payment.vault import AudioVault, header_digest
from service.payment.wire import (
    bad_payment,
    copy_payment_response_to_v1,
    first_error,
    json_response,
    messages,
    no_more_messages,
    read_body,
    replaying_receive,
    request_id,
    set_query_param,
    v1_body,
    v1_payment_response,
)

logger = logging.getLogger("smalltts.payment")

ERR_INVALID_VERSION = "invalid_x402_version"
ERR_INVALID_NETWORK = "invalid_network"
ERR_UNSUPPORTED_SCHEME = "unsupported_scheme"
UNAVAILABLE_RETRY_AFTER_S = 5

# The SDK writes some 402 errors as sentences; clients get a stable code.
_SDK_MESSAGE_CODES = {
    "Payment required": "payment_required",
    "No matching payment requirements": "payment_requirements_mismatch",
}
_REASON_MESSAGES = {
    "payment_required": "this route is paid: sign one of `accepts` and repeat the request with PAYMENT-SIGNATURE",
    "payment_requirements_mismatch": "the payment was made for other terms (amount, duration, token, network or "
    "payTo differ from this request's)",
    "invalid_exact_evm_payload_signature": "the signature does not recover to authorization.from for this "
    "token, chain and terms",
    "invalid_exact_evm_payload_recipient_mismatch": "authorization.to is not this service's payTo",
    "invalid_exact_evm_payload_authorization_value_mismatch": "authorization.value is not the price of this request",
    "invalid_exact_evm_nonce_already_used": "this authorization was already used",
    "invalid_exact_evm_insufficient_balance": "the payer's token balance is below the price",
    "contract_wallet_not_accepted": "payments from contract wallets are not accepted here",
    "settlement_failed": "the payment could not be settled; nothing was charged",
}


@dataclass(frozen=True)
class PaidRoute:
    """A route behind the payment layer, and where to find the text that prices a request without duration."""

    method: str
    path: str
    description: str
    mime_type: str
    body_kind: Literal["form", "json"]
    text_field: str

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


RequirementsFor = Callable[[Decimal, int | None, str, PaidRoute], tuple[list[PaymentRequirements], ResourceInfo]]
EstimateDuration = Callable[[str], float]


class PaymentEdge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[PaidRoute],
        terms: PaymentTerms,
        bounds: DurationBounds,
        requirements_for: RequirementsFor,
        estimate_duration_s: EstimateDuration,
        facilitator: GuardedFacilitator,
        accept_v1: bool,
        max_body_bytes: Mapping[str, int],
        max_text_chars: int,
        max_steps: int,
        vault: AudioVault,
        client_limit: RateLimiter | None = None,
    ) -> None:
        self.app = app
        self.routes = {(route.method, route.path): route for route in routes}
        self.terms = terms
        self.bounds = bounds
        self.requirements_for = requirements_for
        self.estimate_duration_s = estimate_duration_s
        self.facilitator = facilitator
        self.accept_v1 = accept_v1
        self.max_body_bytes = dict(max_body_bytes)  # per route path: the edge buffers bodies before the app's limits
        self.max_text_chars = max_text_chars
        self.max_steps = max_steps
        self.vault = vault
        self.client_limit = client_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        if route is None:
            alias = self._alias_of_paid_route(scope)
            if alias is not None:
                await error_response(404, "not_found", f"not found; the paid route is {alias}")(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if self.client_limit is not None and _has_payment_header(scope):
            # Before anything is parsed: junk headers must cost an attacker more than they cost us.
            wait_s = self.client_limit.take(_client_host(scope))
            if wait_s is not None:
                await _rate_limited(wait_s, "too many payment attempts from this client")(scope, receive, send)
                return
        try:
            duration_s, steps, receive = await self._resolve_terms(route, scope, receive)
        except InputError as exc:
            status = exc.status if 400 <= exc.status < 500 else 422
            await error_response(status, exc.code, exc.message, exc.field)(scope, receive, send)
            return
        except ClientDisconnect:
            return
        duration_text = format_duration(duration_s)
        set_query_param(scope, "duration", duration_text)
        if steps is not None:
            set_query_param(scope, "steps", str(steps))
        attempt = PaymentAttempt(request_id=request_id(scope), route=route.key, duration_s=duration_text, protocol=2)
        requirements, resource = self.requirements_for(duration_s, steps, str(Request(scope).url), route)
        refusal = self._normalize_payment_header(scope, requirements, resource, attempt)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        presented = attempt.authorization
        if presented is not None and self.vault.has(presented.payer, presented.nonce):
            # A payment whose settlement outcome was unknown comes back for its audio: never settled twice.
            answer = await collect_held_answer(
                self.facilitator, self.vault, self.terms, attempt, requirements, resource
            )
            for message in answer:
                await send(message)
            return

        token = current_attempt.set(attempt)
        try:
            await self.app(scope, receive, self._shape_response(send, attempt, requirements, resource))
        finally:
            current_attempt.reset(token)
            # The handler raised or the client went away before any response started.
            await self.facilitator.release(attempt, "handler_error_or_disconnect")

    def _alias_of_paid_route(self, scope: Scope) -> str | None:
        """A paid path spelled differently ("/synthesize/", "//Synthesize"): the SDK still asks for payment on
        it, but the router would only redirect or 404, and the SDK settles any status below 400, so a payment
        presented there could pay for a redirect. Such spellings are refused before payment."""
        if scope["type"] != "http":
            return None
        canonical = re.sub(r"/+", "/", scope.get("path", "")).rstrip("/").lower()
        for (method, path), route in self.routes.items():
            if method == scope.get("method") and path.lower() == canonical:
                return route.path
        return None

    # --- duration ------------------------------------------------------------------------------------------

    async def _resolve_terms(
        self, route: PaidRoute, scope: Scope, receive: Receive
    ) -> tuple[Decimal, int | None, Receive]:
        """The duration and sampler steps to price and synthesize, and a receive that replays whatever body was
        read for them."""
        if route.body_kind == "json":
            return await self._resolve_json_terms(route, scope, receive)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        steps = parse_steps(query["steps"], self.max_steps) if "steps" in query else None
        if "duration" in query:
            return parse_duration(query["duration"], self.bounds), steps, receive
        body = await read_body(receive, self.max_body_bytes[route.path])
        text = await self._form_text(route, scope, body)
        return await self._estimate(route, text, speed=1.0), steps, replaying_receive(body, receive)

    async def _resolve_json_terms(
        self, route: PaidRoute, scope: Scope, receive: Receive
    ) -> tuple[Decimal, int | None, Receive]:
        # The JSON route carries `duration` (and `speed`) in its body: the paid duration is written back
        # there, so the handler synthesizes exactly what was priced.
        body = await read_body(receive, self.max_body_bytes[route.path])
        try:
            data = json.loads(body)
        except ValueError:
            raise InputError("the body is not valid JSON", field="body", code="invalid_json", status=400) from None
        if not isinstance(data, dict):
            raise InputError("the body must be a JSON object", field="body", code="invalid", status=422)
        raw_steps = data.get("steps")
        steps = parse_steps(raw_steps, self.max_steps) if raw_steps is not None else None
        if isinstance(raw_steps, str):
            raise InputError("steps must be a whole number", field="steps", code="invalid")
        given = data.get("duration")
        if given is not None:
            if isinstance(given, bool) or not isinstance(given, int | float):
                raise InputError("duration must be a number of seconds", field="duration", code="invalid")
            duration_s = parse_duration(repr(given), self.bounds)
        else:
            speed = data.get("speed", 1.0)
            if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
                raise InputError("speed must be a number between 0.25 and 4", field="speed", code="invalid")
            text = data.get(route.text_field)
            if not isinstance(text, str) or not text.strip():
                raise _missing_text(route)
            duration_s = await self._estimate(route, text, speed=float(speed))
        data["duration"] = float(duration_s)
        rewritten = json.dumps(data).encode("utf-8")
        scope["headers"] = [(name, value) for name, value in scope["headers"] if name != b"content-length"] + [
            (b"content-length", str(len(rewritten)).encode("ascii"))
        ]
        return duration_s, steps, replaying_receive(rewritten, receive)

    async def _estimate(self, route: PaidRoute, text: str, *, speed: float) -> Decimal:
        if len(text) > self.max_text_chars:  # the handler's own limit, checked before espeak-ng runs
            raise InputError(
                f"text has {len(text)} characters; the limit is {self.max_text_chars}",
                field=route.text_field,
                code="text_too_long",
            )
        estimate_s = await anyio.to_thread.run_sync(self.estimate_duration_s, text)
        return quantize_estimate(estimate_s / speed, self.bounds)

    async def _form_text(self, route: PaidRoute, scope: Scope, body: bytes) -> str:
        request = Request(scope, replaying_receive(body, no_more_messages))
        try:
            async with request.form() as form:
                value = form.get(route.text_field)
        except (MultiPartException, ValueError) as exc:
            raise InputError(
                f"the form could not be parsed: {exc}", field="body", code="invalid_form", status=400
            ) from None
        if not isinstance(value, str) or not value.strip():
            raise _missing_text(route)
        return value

    # --- payment header -------------------------------------------------------------------------------------

    def _normalize_payment_header(
        self, scope: Scope, requirements: list[PaymentRequirements], resource: ResourceInfo, attempt: PaymentAttempt
    ) -> Callable[[Scope, Receive, Send], Awaitable[None]] | None:
        """Leave at most one v2 PAYMENT-SIGNATURE header on the scope; return a response to send instead, if any."""
        headers = Headers(scope=scope)
        v2_header, v1_header = headers.get("payment-signature"), headers.get("x-payment")
        if v2_header is None and v1_header is None:
            return None
        if v2_header is not None and v1_header is not None:
            return bad_payment("send one payment header, PAYMENT-SIGNATURE (x402 v2) or X-PAYMENT (v1), not both")
        header_name = "PAYMENT-SIGNATURE" if v2_header is not None else "X-PAYMENT"
        raw = v2_header if v2_header is not None else v1_header
        assert raw is not None
        attempt.header_digest = header_digest(raw)
        try:
            data = json.loads(base64.b64decode(raw.strip(), validate=True))
        except (binascii.Error, ValueError):
            return bad_payment(f"{header_name} must be base64 of a JSON payment payload")
        if not isinstance(data, dict):
            return bad_payment(f"{header_name} must hold a JSON object")
        version = data.get("x402Version")
        attempt.legacy_header = header_name == "X-PAYMENT"
        if version == 2:
            try:
                payload = PaymentPayload.model_validate(data)
                attempt.authorization = parse_authorization(payload.payload)
            except (ValidationError, ValueError) as exc:
                return bad_payment(f"{header_name}: {first_error(exc)}")
        elif version == 1:
            attempt.protocol = 1
            if not self.accept_v1:
                return self._refuse(
                    ERR_INVALID_VERSION, "this service accepts x402 v2 payments only", requirements, resource, attempt
                )
            try:
                v1_payload = PaymentPayloadV1.model_validate(data)
                attempt.authorization = parse_authorization(v1_payload.payload)
            except (ValidationError, ValueError) as exc:
                return bad_payment(f"{header_name}: {first_error(exc)}")
            if v1_payload.scheme != "exact":
                return self._refuse(
                    ERR_UNSUPPORTED_SCHEME,
                    f"scheme {v1_payload.scheme!r} is not offered",
                    requirements,
                    resource,
                    attempt,
                )
            if v1_payload.network != self.terms.network.v1_name:
                message = f"network {v1_payload.network!r}: this service is paid on {self.terms.network.v1_name!r}"
                return self._refuse(ERR_INVALID_NETWORK, message, requirements, resource, attempt)
            # Same EIP-3009 authorization in both versions: verified against this request's own requirement.
            payload = PaymentPayload(x402_version=2, accepted=requirements[0], payload=v1_payload.payload)
        else:
            return bad_payment(f"{header_name}: x402Version must be 1 or 2, got {version!r}")
        kept = [(name, value) for name, value in scope["headers"] if name not in (b"payment-signature", b"x-payment")]
        kept.append((b"payment-signature", encode_payment_signature_header(payload).encode("latin-1")))
        scope["headers"] = kept
        return None

    def _refuse(
        self,
        code: str,
        message: str,
        requirements: list[PaymentRequirements],
        resource: ResourceInfo,
        attempt: PaymentAttempt,
    ) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        required = PaymentRequired(x402_version=2, error=code, resource=resource, accepts=requirements)
        headers = {"PAYMENT-REQUIRED": encode_payment_required_header(required), "Cache-Control": "no-store"}
        attempt.reject_message = message
        body = v1_body(code, message, requirements, resource, self.terms)
        return json_response(402, body, headers)

    # --- response ---------------------------------------------------------------------------------------------

    def _shape_response(
        self,
        send: Send,
        attempt: PaymentAttempt,
        requirements: list[PaymentRequirements],
        resource: ResourceInfo,
    ) -> Send:
        held_start: Message | None = None

        async def shaped_send(message: Message) -> None:
            nonlocal held_start
            if message["type"] == "http.response.start":
                if message["status"] >= 400:
                    # Free the reservation before the client hears of the failure, so that it can present
                    # the same authorization again at once (it was never settled).
                    await self.facilitator.release(attempt, f"handler_failed:{message['status']}")
                if message["status"] == 402:
                    held_start = message  # the SDK's body is `{}`: replaced once it has been sent
                    return
                if attempt.legacy_header:
                    copy_payment_response_to_v1(MutableHeaders(scope=message), self.terms)
                await send(message)
                return
            if held_start is None:
                await send(message)
                return
            if message.get("more_body", False):
                return
            for reply in self._replace_402(held_start, attempt, requirements, resource):
                await send(reply)

        return shaped_send

    def _replace_402(
        self, start: Message, attempt: PaymentAttempt, requirements: list[PaymentRequirements], resource: ResourceInfo
    ) -> list[Message]:
        sdk_headers = Headers(raw=start["headers"])
        keep = {name: sdk_headers[name] for name in ("payment-required", "payment-response") if name in sdk_headers}
        if outcome_is_unknown(attempt):
            hold_answer(self.vault, attempt)
            return outcome_unknown_messages(keep.get("payment-response"))
        if attempt.unavailable is not None:
            logger.error("payment unavailable for request %s: %s", attempt.request_id, attempt.unavailable)
            body: dict[str, Any] = {
                "error": {
                    "code": ERR_PAYMENT_UNAVAILABLE,
                    "message": f"payments cannot be processed right now ({attempt.unavailable}); nothing was "
                    "charged; retry later",
                    "field": None,
                }
            }
            return messages(503, body, {**keep, "Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)})
        if attempt.retry_after_s is not None:
            return _rate_limited_messages(attempt.retry_after_s, attempt.reject_message or "too many payment attempts")
        code = "payment_required"
        if "payment-response" in keep:
            code = decode_payment_response_header(keep["payment-response"]).error_reason or "settlement_failed"
        elif "payment-required" in keep:
            error = decode_payment_required_header(keep["payment-required"]).error or "Payment required"
            code = _SDK_MESSAGE_CODES.get(
                error, error if re.fullmatch(r"[a-z0-9_]{1,80}", error) else "payment_rejected"
            )
        message = attempt.reject_message or _REASON_MESSAGES.get(code, code.replace("_", " "))
        headers = {**keep, "Cache-Control": "no-store"}
        if attempt.legacy_header and "payment-response" in keep:
            headers["X-PAYMENT-RESPONSE"] = v1_payment_response(keep["payment-response"], self.terms)
        return messages(402, v1_body(code, message, requirements, resource, self.terms), headers)


def _rate_limited_messages(wait_s: float, message: str) -> list[Message]:
    body = {"error": {"code": ERR_RATE_LIMITED, "message": message, "field": None}}
    return messages(429, body, {"Retry-After": str(int(wait_s)), "Cache-Control": "no-store"})


def _rate_limited(wait_s: float, message: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def respond(scope: Scope, receive: Receive, send: Send) -> None:
        for message_ in _rate_limited_messages(wait_s, message):
            await send(message_)

    return respond


def _has_payment_header(scope: Scope) -> bool:
    return any(name in (b"payment-signature", b"x-payment") for name, _ in scope.get("headers", ()))


def _client_host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


def _missing_text(route: PaidRoute) -> InputError:
    return InputError(
        f"{route.text_field} is required (or pass duration): the price depends on the duration",
        field=route.text_field,
        code="text_missing",
    )

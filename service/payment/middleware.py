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
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

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
from x402.schemas.v1 import PaymentPayloadV1, PaymentRequiredV1, PaymentRequirementsV1

from model.errors import InputError
from service.errors import error_response
from service.payment.facilitator import (
    ERR_PAYMENT_UNAVAILABLE,
    GuardedFacilitator,
    PaymentAttempt,
    current_attempt,
    parse_authorization,
)
from service.payment.networks import PaymentTerms
from service.payment.pricing import DurationBounds, format_duration, parse_duration, quantize_estimate

logger = logging.getLogger("smalltts.payment")

ERR_INVALID_PAYLOAD = "invalid_payload"
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
    "settlement_pending": "the payment transaction was sent but not confirmed in time; the audio is withheld and "
    "the payment is reconciled from the chain later (see the transaction in PAYMENT-RESPONSE)",
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


RequirementsFor = Callable[[Decimal, str, PaidRoute], tuple[list[PaymentRequirements], ResourceInfo]]
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        if route is None:
            alias = self._alias_of_paid_route(scope)
            if alias is not None:
                await error_response(404, "not_found", f"not found; the paid route is {alias}")(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        try:
            duration_s, receive = await self._resolve_duration(route, scope, receive)
        except InputError as exc:
            status = exc.status if 400 <= exc.status < 500 else 422
            await error_response(status, exc.code, exc.message, exc.field)(scope, receive, send)
            return
        except ClientDisconnect:
            return
        duration_text = format_duration(duration_s)
        _set_query_param(scope, "duration", duration_text)
        attempt = PaymentAttempt(request_id=_request_id(scope), route=route.key, duration_s=duration_text, protocol=2)
        requirements, resource = self.requirements_for(duration_s, str(Request(scope).url), route)
        refusal = self._normalize_payment_header(scope, requirements, resource, attempt)
        if refusal is not None:
            await refusal(scope, receive, send)
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

    async def _resolve_duration(self, route: PaidRoute, scope: Scope, receive: Receive) -> tuple[Decimal, Receive]:
        """The duration to price and synthesize, and a receive that replays whatever body was read for it."""
        if route.body_kind == "json":
            return await self._resolve_json_duration(route, scope, receive)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if "duration" in query:
            return parse_duration(query["duration"], self.bounds), receive
        body = await _read_body(receive, self.max_body_bytes[route.path])
        text = await self._form_text(route, scope, body)
        return await self._estimate(route, text, speed=1.0), _replaying_receive(body, receive)

    async def _resolve_json_duration(self, route: PaidRoute, scope: Scope, receive: Receive) -> tuple[Decimal, Receive]:
        # The JSON route carries `duration` (and `speed`) in its body: the paid duration is written back
        # there, so the handler synthesizes exactly what was priced.
        body = await _read_body(receive, self.max_body_bytes[route.path])
        try:
            data = json.loads(body)
        except ValueError:
            raise InputError("the body is not valid JSON", field="body", code="invalid_json", status=400) from None
        if not isinstance(data, dict):
            raise InputError("the body must be a JSON object", field="body", code="invalid", status=422)
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
        return duration_s, _replaying_receive(rewritten, receive)

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
        request = Request(scope, _replaying_receive(body, _no_more_messages))
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
            return _bad_payment("send one payment header, PAYMENT-SIGNATURE (x402 v2) or X-PAYMENT (v1), not both")
        header_name = "PAYMENT-SIGNATURE" if v2_header is not None else "X-PAYMENT"
        raw = v2_header if v2_header is not None else v1_header
        assert raw is not None
        try:
            data = json.loads(base64.b64decode(raw.strip(), validate=True))
        except (binascii.Error, ValueError):
            return _bad_payment(f"{header_name} must be base64 of a JSON payment payload")
        if not isinstance(data, dict):
            return _bad_payment(f"{header_name} must hold a JSON object")
        version = data.get("x402Version")
        attempt.legacy_header = header_name == "X-PAYMENT"
        if version == 2:
            try:
                payload = PaymentPayload.model_validate(data)
                parse_authorization(payload.payload)
            except (ValidationError, ValueError) as exc:
                return _bad_payment(f"{header_name}: {_first_error(exc)}")
        elif version == 1:
            attempt.protocol = 1
            if not self.accept_v1:
                return self._refuse(
                    ERR_INVALID_VERSION, "this service accepts x402 v2 payments only", requirements, resource, attempt
                )
            try:
                v1_payload = PaymentPayloadV1.model_validate(data)
                parse_authorization(v1_payload.payload)
            except (ValidationError, ValueError) as exc:
                return _bad_payment(f"{header_name}: {_first_error(exc)}")
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
            return _bad_payment(f"{header_name}: x402Version must be 1 or 2, got {version!r}")
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
        body = _v1_body(code, message, requirements, resource, self.terms)
        return _json_response(402, body, headers)

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
                    _copy_payment_response_to_v1(MutableHeaders(scope=message), self.terms)
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
        if attempt.unavailable is not None:
            logger.error("payment unavailable for request %s: %s", attempt.request_id, attempt.unavailable)
            body: dict[str, Any] = {
                "error": {
                    "code": ERR_PAYMENT_UNAVAILABLE,
                    "message": f"payments cannot be processed right now ({attempt.unavailable}); nothing was "
                    "charged unless PAYMENT-RESPONSE names a transaction; retry later",
                    "field": None,
                }
            }
            return _messages(503, body, {**keep, "Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)})
        code = "payment_required"
        if "payment-response" in keep:
            code = decode_payment_response_header(keep["payment-response"]).error_reason or "settlement_failed"
        elif "payment-required" in keep:
            error = decode_payment_required_header(keep["payment-required"]).error or "Payment required"
            code = _SDK_MESSAGE_CODES.get(error, error if error.replace("_", "").isalnum() else "payment_rejected")
        message = attempt.reject_message or _REASON_MESSAGES.get(code, code.replace("_", " "))
        headers = {**keep, "Cache-Control": "no-store"}
        if attempt.legacy_header and "payment-response" in keep:
            headers["X-PAYMENT-RESPONSE"] = _v1_payment_response(keep["payment-response"], self.terms)
        return _messages(402, _v1_body(code, message, requirements, resource, self.terms), headers)


# --- helpers ---------------------------------------------------------------------------------------------------


def _v1_body(
    code: str, message: str, requirements: list[PaymentRequirements], resource: ResourceInfo, terms: PaymentTerms
) -> dict[str, Any]:
    accepts = [
        PaymentRequirementsV1(
            scheme=requirement.scheme,
            network=terms.network.v1_name,
            max_amount_required=requirement.amount,
            resource=resource.url,
            description=resource.description or "",
            mime_type=resource.mime_type or "",
            pay_to=requirement.pay_to,
            max_timeout_seconds=requirement.max_timeout_seconds,
            asset=requirement.asset,
            extra=requirement.extra,
        )
        for requirement in requirements
    ]
    body = PaymentRequiredV1(x402_version=1, error=code, accepts=accepts).model_dump(by_alias=True, exclude_none=True)
    body["message"] = message
    return body


def _copy_payment_response_to_v1(headers: MutableHeaders, terms: PaymentTerms) -> None:
    if "payment-response" in headers:
        headers["X-PAYMENT-RESPONSE"] = _v1_payment_response(headers["payment-response"], terms)


def _v1_payment_response(encoded: str, terms: PaymentTerms) -> str:
    settled = decode_payment_response_header(encoded).model_dump(by_alias=True, exclude_none=True)
    settled["network"] = terms.network.v1_name  # v1 names networks ("base"), v2 uses CAIP-2 ids
    return base64.b64encode(json.dumps(settled).encode("utf-8")).decode("ascii")


def _messages(status: int, body: dict[str, Any], headers: dict[str, str]) -> list[Message]:
    content = json.dumps(body).encode("utf-8")
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    raw += [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode("ascii"))]
    return [
        {"type": "http.response.start", "status": status, "headers": raw},
        {"type": "http.response.body", "body": content, "more_body": False},
    ]


def _json_response(
    status: int, body: dict[str, Any], headers: dict[str, str]
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def respond(scope: Scope, receive: Receive, send: Send) -> None:
        for message in _messages(status, body, headers):
            await send(message)

    return respond


def _missing_text(route: PaidRoute) -> InputError:
    return InputError(
        f"{route.text_field} is required (or pass duration): the price depends on the duration",
        field=route.text_field,
        code="text_missing",
    )


def _bad_payment(message: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    return error_response(400, ERR_INVALID_PAYLOAD, message, "PAYMENT-SIGNATURE")


def _first_error(exc: ValidationError | ValueError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first.get("loc", ()))
        return f"{location}: {first.get('msg', 'invalid')}" if location else str(first.get("msg", "invalid"))
    return str(exc)


def _request_id(scope: Scope) -> str:
    state = scope.get("state") or {}
    request_id = state.get("request_id")
    return str(request_id) if request_id else uuid.uuid4().hex[:16]


def _set_query_param(scope: Scope, name: str, value: str) -> None:
    pairs = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)]
    pairs = [(k, v) for k, v in pairs if k != name] + [(name, value)]
    scope["query_string"] = urlencode(pairs).encode("latin-1")


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise InputError(f"body exceeds {limit} bytes", field="body", code="too_large", status=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying_receive(body: bytes, receive: Receive) -> Receive:
    """A receive that hands out the buffered body once, then defers to the real one (for disconnects)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _no_more_messages() -> Message:
    return {"type": "http.disconnect"}

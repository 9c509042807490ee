"""The payment header as the edge receives it: its shape checked, and x402 v1 rewritten as v2.

    normalize_payment_header(scope, ...)   leaves at most one v2 PAYMENT-SIGNATURE header on the scope, or
                                           returns the answer to send instead

Junk (not base64, not JSON, another x402 version, a malformed EIP-3009 authorization) gets 400
`invalid_payload`, which the SDK would silently treat as "no payment". x402 v1 (`X-PAYMENT`) carries the same
EIP-3009 signature as v2, so its payload is re-wrapped as a v2 payload whose `accepted` is this request's own
requirement, and the SDK verifies it like any other (or it is refused: 402 `invalid_x402_version` when v1 is
switched off).
"""

from __future__ import annotations

import base64
import binascii
import json

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import Scope
from x402.http.utils import encode_payment_required_header, encode_payment_signature_header
from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements, ResourceInfo
from x402.schemas.v1 import PaymentPayloadV1

from service.payment.attempt import PaymentAttempt
from service.payment.authorization import parse_authorization
from service.payment.networks import PaymentTerms
from service.payment.vault import header_digest
from service.payment.wire import Responder, bad_payment, first_error, json_response, v1_body

ERR_INVALID_VERSION = "invalid_x402_version"
ERR_INVALID_NETWORK = "invalid_network"
ERR_UNSUPPORTED_SCHEME = "unsupported_scheme"
PAYMENT_HEADERS = (b"payment-signature", b"x-payment")


def has_payment_header(scope: Scope) -> bool:
    return any(name in PAYMENT_HEADERS for name, _ in scope.get("headers", ()))


def normalize_payment_header(
    scope: Scope,
    requirements: list[PaymentRequirements],
    resource: ResourceInfo,
    attempt: PaymentAttempt,
    *,
    terms: PaymentTerms,
    accept_v1: bool,
) -> Responder | None:
    """Leave at most one v2 PAYMENT-SIGNATURE header on the scope; return a response to send instead, if any.

    Fills the attempt's header digest, protocol, legacy flag and authorization as it reads the header.
    """
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
        if not accept_v1:
            message = "this service accepts x402 v2 payments only"
            return _refuse(ERR_INVALID_VERSION, message, requirements, resource, attempt, terms)
        try:
            v1_payload = PaymentPayloadV1.model_validate(data)
            attempt.authorization = parse_authorization(v1_payload.payload)
        except (ValidationError, ValueError) as exc:
            return bad_payment(f"{header_name}: {first_error(exc)}")
        if v1_payload.scheme != "exact":
            message = f"scheme {v1_payload.scheme!r} is not offered"
            return _refuse(ERR_UNSUPPORTED_SCHEME, message, requirements, resource, attempt, terms)
        if v1_payload.network != terms.network.v1_name:
            message = f"network {v1_payload.network!r}: this service is paid on {terms.network.v1_name!r}"
            return _refuse(ERR_INVALID_NETWORK, message, requirements, resource, attempt, terms)
        # Same EIP-3009 authorization in both versions: verified against this request's own requirement.
        payload = PaymentPayload(x402_version=2, accepted=requirements[0], payload=v1_payload.payload)
    else:
        return bad_payment(f"{header_name}: x402Version must be 1 or 2, got {version!r}")
    kept = [(name, value) for name, value in scope["headers"] if name not in PAYMENT_HEADERS]
    kept.append((b"payment-signature", encode_payment_signature_header(payload).encode("latin-1")))
    scope["headers"] = kept
    return None


def _refuse(
    code: str,
    message: str,
    requirements: list[PaymentRequirements],
    resource: ResourceInfo,
    attempt: PaymentAttempt,
    terms: PaymentTerms,
) -> Responder:
    required = PaymentRequired(x402_version=2, error=code, resource=resource, accepts=requirements)
    headers = {"PAYMENT-REQUIRED": encode_payment_required_header(required), "Cache-Control": "no-store"}
    attempt.reject_message = message
    return json_response(402, v1_body(code, message, requirements, resource, terms), headers)

"""What a client hears when a paid request is refused: the answer that replaces the SDK's bare 402.

    refusal_messages(start, attempt, ...)   the SDK's 402 rewritten: 504 when the settlement outcome is unknown,
                                            503 for an outage, 429 for a rate limit, else 402 with the x402 v1
                                            body ({x402Version: 1, error, accepts}) and a reason code + message
    rate_limited(wait_s, message)           429 + Retry-After

An outage (RPC, facilitator, ledger) never looks like a bad payment, and never yields free audio.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from starlette.datastructures import Headers
from starlette.types import Message
from x402.http.utils import decode_payment_required_header, decode_payment_response_header
from x402.schemas import PaymentRequirements, ResourceInfo

from service.payment.attempt import PaymentAttempt
from service.payment.held import hold_answer, outcome_is_unknown, outcome_unknown_messages
from service.payment.networks import PaymentTerms
from service.payment.vault import AudioVault
from service.payment.verdict import ERR_PAYMENT_UNAVAILABLE, ERR_RATE_LIMITED
from service.payment.wire import Responder, json_response, messages, v1_body, v1_payment_response

logger = logging.getLogger("smalltts.payment")

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


def refusal_messages(
    start: Message,
    attempt: PaymentAttempt,
    requirements: list[PaymentRequirements],
    resource: ResourceInfo,
    *,
    vault: AudioVault,
    terms: PaymentTerms,
) -> list[Message]:
    """The answer to send instead of the SDK's 402 (`start` is its http.response.start; its body is `{}`)."""
    sdk_headers = Headers(raw=start["headers"])
    keep = {name: sdk_headers[name] for name in ("payment-required", "payment-response") if name in sdk_headers}
    if outcome_is_unknown(attempt):
        hold_answer(vault, attempt)
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
        code = _SDK_MESSAGE_CODES.get(error, error if re.fullmatch(r"[a-z0-9_]{1,80}", error) else "payment_rejected")
    message = attempt.reject_message or _REASON_MESSAGES.get(code, code.replace("_", " "))
    headers = {**keep, "Cache-Control": "no-store"}
    if attempt.legacy_header and "payment-response" in keep:
        headers["X-PAYMENT-RESPONSE"] = v1_payment_response(keep["payment-response"], terms)
    return messages(402, v1_body(code, message, requirements, resource, terms), headers)


def rate_limited(wait_s: float, message: str) -> Responder:
    return json_response(429, *_rate_limit(wait_s, message))


def _rate_limited_messages(wait_s: float, message: str) -> list[Message]:
    return messages(429, *_rate_limit(wait_s, message))


def _rate_limit(wait_s: float, message: str) -> tuple[dict[str, Any], dict[str, str]]:
    body = {"error": {"code": ERR_RATE_LIMITED, "message": message, "field": None}}
    return body, {"Retry-After": str(int(wait_s)), "Cache-Control": "no-store"}

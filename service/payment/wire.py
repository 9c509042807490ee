"""What the payment edge puts on the wire and reads off it: x402 v1 bodies, raw ASGI answers, buffered bodies."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from pydantic import ValidationError
from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send
from x402.http.utils import decode_payment_response_header
from x402.schemas import PaymentRequirements, ResourceInfo
from x402.schemas.v1 import PaymentRequiredV1, PaymentRequirementsV1

from model.errors import InputError
from service.errors import error_response
from service.payment.networks import PaymentTerms
from service.payment.verdict import ERR_INVALID_PAYLOAD

Responder = Callable[[Scope, Receive, Send], Awaitable[None]]  # an ASGI answer, ready to send


def v1_body(
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


def copy_payment_response_to_v1(headers: MutableHeaders, terms: PaymentTerms) -> None:
    if "payment-response" in headers:
        headers["X-PAYMENT-RESPONSE"] = v1_payment_response(headers["payment-response"], terms)


def v1_payment_response(encoded: str, terms: PaymentTerms) -> str:
    settled = decode_payment_response_header(encoded).model_dump(by_alias=True, exclude_none=True)
    settled["network"] = terms.network.v1_name  # v1 names networks ("base"), v2 uses CAIP-2 ids
    return base64.b64encode(json.dumps(settled).encode("utf-8")).decode("ascii")


def messages(status: int, body: dict[str, Any], headers: dict[str, str]) -> list[Message]:
    content = json.dumps(body).encode("utf-8")
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    raw += [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode("ascii"))]
    return [
        {"type": "http.response.start", "status": status, "headers": raw},
        {"type": "http.response.body", "body": content, "more_body": False},
    ]


def json_response(status: int, body: dict[str, Any], headers: dict[str, str]) -> Responder:
    async def respond(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages(status, body, headers):
            await send(message)

    return respond


def bad_payment(message: str) -> Responder:
    return error_response(400, ERR_INVALID_PAYLOAD, message, "PAYMENT-SIGNATURE")


def first_error(exc: ValidationError | ValueError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first.get("loc", ()))
        return f"{location}: {first.get('msg', 'invalid')}" if location else str(first.get("msg", "invalid"))
    return str(exc)


def request_id(scope: Scope) -> str:
    state = scope.get("state") or {}
    request_id = state.get("request_id")
    return str(request_id) if request_id else uuid.uuid4().hex[:16]


def set_query_param(scope: Scope, name: str, value: str) -> None:
    pairs = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)]
    pairs = [(k, v) for k, v in pairs if k != name] + [(name, value)]
    scope["query_string"] = urlencode(pairs).encode("latin-1")


async def read_body(receive: Receive, limit: int) -> bytes:
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


def replaying_receive(body: bytes, receive: Receive) -> Receive:
    """A receive that hands out the buffered body once, then defers to the real one (for disconnects)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def no_more_messages() -> Message:
    return {"type": "http.disconnect"}

"""Payments whose settlement ended without a verdict: the honest answer, the audio kept, and its collection.

When settlement times out, or the RPC fails while it runs, the transaction may still land. Saying "nothing was
charged" would be a lie and throwing the audio away would sell nothing for money, so:

    outcome_is_unknown(attempt)       did this request's settlement end without a verdict?
    outcome_unknown_messages()        504 settlement_outcome_unknown + Retry-After: "send the same header again"
    hold_answer(vault, attempt)       keep the audio (AudioVault: bounded, until validBefore + a grace)
    collect_held_answer(...)          the same header came back: the audio once the chain shows the payment,
                                      402 once it failed, 504 again while nobody knows
    AnswerCapture                     the middleware (inside the SDK's) that copies the handler's answer
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from x402.http.utils import encode_payment_response_header
from x402.mechanisms.evm.constants import ERR_NONCE_ALREADY_USED, ERR_SETTLEMENT_PENDING
from x402.schemas import PaymentRequirements, ResourceInfo, SettleResponse

from service.payment.attempt import PaymentAttempt, current_attempt
from service.payment.facilitator import GuardedFacilitator
from service.payment.networks import PaymentTerms
from service.payment.vault import AudioVault
from service.payment.verdict import ERR_SETTLEMENT_FAILED, ERR_SETTLEMENT_UNKNOWN, NO_VERDICT_ERRORS
from service.payment.wire import copy_payment_response_to_v1, messages, v1_body

OUTCOME_UNKNOWN_MESSAGE = (
    "the audio was made and its payment was sent for settlement, but the outcome is not known yet: the money "
    "may or may not have moved. Repeat this request with the very same payment header (do not sign a new "
    "one): once the payment is settled the audio is returned without a second charge; if it fails you get "
    "402 and nothing was charged."
)
OUTCOME_UNKNOWN_RETRY_S = 10
MESSAGE_NONCE_USED = "this authorization was already used"
MESSAGE_SETTLEMENT_FAILED = "the payment could not be settled; nothing was charged"


def outcome_is_unknown(attempt: PaymentAttempt) -> bool:
    """Settlement started and ended without a verdict (a timeout, the RPC failing mid-way, a receipt not seen
    in time): a transaction may be on its way, so "nothing was charged" would be a lie."""
    if not attempt.settle_sent:  # failed before the inner facilitator was asked: nothing can have moved
        return False
    settlement = attempt.settlement
    if settlement is None or attempt.unavailable is not None:
        return settlement is None or not settlement.success
    return not settlement.success and settlement.error_reason in (ERR_SETTLEMENT_PENDING, ERR_SETTLEMENT_UNKNOWN)


def outcome_unknown_messages(payment_response: str | None) -> list[Message]:
    body = {"error": {"code": ERR_SETTLEMENT_UNKNOWN, "message": OUTCOME_UNKNOWN_MESSAGE, "field": None}}
    headers = {"Retry-After": str(OUTCOME_UNKNOWN_RETRY_S), "Cache-Control": "no-store"}
    if payment_response is not None:
        headers["PAYMENT-RESPONSE"] = payment_response
    return messages(504, body, headers)


def hold_answer(vault: AudioVault, attempt: PaymentAttempt) -> None:
    """Keep the captured answer of a request whose settlement outcome is unknown."""
    authorization = attempt.authorization
    if authorization is None or attempt.captured is None or attempt.header_digest is None:
        return
    vault.hold(
        authorization.payer, authorization.nonce, attempt.header_digest, attempt.captured,
        valid_before=authorization.valid_before,
    )  # fmt: skip


async def collect_held_answer(
    facilitator: GuardedFacilitator,
    vault: AudioVault,
    terms: PaymentTerms,
    attempt: PaymentAttempt,
    requirements: list[PaymentRequirements],
    resource: ResourceInfo,
) -> list[Message]:
    """The same header came back for a payment whose settlement outcome was unknown."""
    authorization = attempt.authorization
    if authorization is None or attempt.header_digest is None:
        raise ValueError("collect_held_answer needs the attempt's authorization and header digest")
    payer, nonce = authorization.payer, authorization.nonce
    held = vault.get(payer, nonce, attempt.header_digest)
    if held is None:  # another header for the same (payer, nonce): never the audio
        body = v1_body(ERR_NONCE_ALREADY_USED, MESSAGE_NONCE_USED, requirements, resource, terms)
        return messages(402, body, {"Cache-Control": "no-store"})
    try:
        outcome, tx_hash = await facilitator.settled_outcome(payer, nonce)
    except NO_VERDICT_ERRORS:
        outcome, tx_hash = "unknown", None
    if outcome == "unknown":
        return outcome_unknown_messages(None)
    vault.discard(payer, nonce)
    settle = SettleResponse(
        success=outcome == "settled", error_reason=None if outcome == "settled" else ERR_SETTLEMENT_FAILED,
        transaction=tx_hash or "", network=terms.network.caip2, payer=payer,
    )  # fmt: skip
    receipt = encode_payment_response_header(settle)
    if outcome != "settled":
        body = v1_body(ERR_SETTLEMENT_FAILED, MESSAGE_SETTLEMENT_FAILED, requirements, resource, terms)
        return messages(402, body, {"PAYMENT-RESPONSE": receipt, "Cache-Control": "no-store"})
    headers = [(name, value) for name, value in held.headers if name.lower() != b"payment-response"]
    headers.append((b"payment-response", receipt.encode("latin-1")))
    start: Message = {"type": "http.response.start", "status": held.status, "headers": headers}
    if attempt.legacy_header:
        copy_payment_response_to_v1(MutableHeaders(scope=start), terms)
    return [start, {"type": "http.response.body", "body": held.body, "more_body": False}]


class AnswerCapture:
    """Between the SDK's middleware and the routes: keeps a copy of a paid request's successful answer on
    its PaymentAttempt, so that the audio of a payment whose settlement outcome is unknown can be held."""

    def __init__(self, app: ASGIApp, *, paths: Sequence[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        attempt = current_attempt.get()
        if scope["type"] != "http" or attempt is None or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def capturing_send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body" and status < 400:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    attempt.captured = (status, headers, b"".join(chunks))
            await send(message)

        await self.app(scope, receive, capturing_send)

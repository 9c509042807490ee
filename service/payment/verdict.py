"""What clients may read of a payment verdict, and which failures are no verdict at all.

    reason_code / clean_verify / clean_settle   the SDK's verdicts without free text: our snake_case codes only
    UNAVAILABLE_ERRORS, unavailable_message     the payment machinery is down (RPC, facilitator, ledger): 503
    NO_VERDICT_ERRORS                           ... or did not answer in time
    REJECTIONS                                  the sentences that explain our own refusals

Failures are mapped to outages here, in one place, so that an outage never reads as a bad payment. The SDK's
and the exceptions' texts (which may hold RPC URLs with API keys) never reach a client.
"""

from __future__ import annotations

import re

from x402.mechanisms.evm.constants import ERR_INSUFFICIENT_BALANCE, ERR_INVALID_SIGNATURE, ERR_NONCE_ALREADY_USED
from x402.schemas import PaymentRequirements, SettleResponse, VerifyResponse

from service.payment.chain import RPC_TRANSPORT_ERRORS, ChainUnavailableError
from service.payment.inner import (
    MESSAGE_FACILITATOR_UNREACHABLE,
    MESSAGE_RPC_UNREACHABLE,
    FacilitatorUnavailableError,
)
from service.payment.ledger import LedgerError

ERR_PAYMENT_UNAVAILABLE = "payment_unavailable"  # our code: RPC, facilitator or ledger down (answered 503)
ERR_INVALID_PAYLOAD = "invalid_payload"
ERR_CONTRACT_WALLET = "contract_wallet_not_accepted"
ERR_RATE_LIMITED = "rate_limited"
ERR_SETTLEMENT_UNKNOWN = "settlement_outcome_unknown"
ERR_SETTLEMENT_FAILED = "settlement_failed"
_REASON_CODE_RE = re.compile(r"^[a-z0-9_]{1,80}$")

# Exceptions that mean "the payment machinery is down", never "the payment is bad". Mapped in one place.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    *RPC_TRANSPORT_ERRORS,
    ChainUnavailableError,
    FacilitatorUnavailableError,
    LedgerError,
)

NO_VERDICT_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *UNAVAILABLE_ERRORS)

REJECTIONS = {
    ERR_INVALID_SIGNATURE: "the signature does not recover to authorization.from for this token, chain and terms",
    ERR_CONTRACT_WALLET: "payments from contract wallets are not accepted here; pay from an externally owned account",
    ERR_NONCE_ALREADY_USED: "this authorization (payer, nonce) is already being used or was used",
    ERR_INSUFFICIENT_BALANCE: "the payer's token balance does not cover this payment and the ones it has in flight",
}


def unavailable_message(exc: BaseException) -> str:
    """Our words for an outage (one of UNAVAILABLE_ERRORS), never the exception's."""
    if isinstance(exc, FacilitatorUnavailableError):
        return MESSAGE_FACILITATOR_UNREACHABLE
    if isinstance(exc, LedgerError):
        return "the payment ledger is unavailable"
    return MESSAGE_RPC_UNREACHABLE


def reason_code(reason: str | None, fallback: str) -> str:
    """A reason as clients may read it: one of the SDK's or our snake_case codes, never free text."""
    return reason if reason is not None and _REASON_CODE_RE.match(reason) else fallback


def clean_verify(result: VerifyResponse) -> VerifyResponse:
    """The verdict without the SDK's free-text message (it may quote RPC errors)."""
    if result.is_valid:
        return VerifyResponse(is_valid=True, payer=result.payer)
    return VerifyResponse(
        is_valid=False, invalid_reason=reason_code(result.invalid_reason, "payment_rejected"), payer=result.payer
    )


def clean_settle(result: SettleResponse) -> SettleResponse:
    """The settlement as PAYMENT-RESPONSE may show it: success, a code, the tx hash; no error text."""
    return SettleResponse(
        success=result.success,
        error_reason=None if result.success else reason_code(result.error_reason, ERR_SETTLEMENT_FAILED),
        payer=result.payer,
        transaction=result.transaction if re.fullmatch(r"0x[0-9a-fA-F]{64}", result.transaction or "") else "",
        network=result.network,
        amount=result.amount,
    )


def settle_failure(reason: str, requirements: PaymentRequirements, payer: str) -> SettleResponse:
    """A settlement refused before anything was sent: nothing moved."""
    return SettleResponse(success=False, error_reason=reason, transaction="", network=requirements.network, payer=payer)

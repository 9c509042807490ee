"""The facilitator adapter that the SDK's resource server calls: our checks and the ledger around the SDK's own
verification and settlement.

    GuardedFacilitator            what x402ResourceServer talks to (FacilitatorClient protocol)
    ├── ValidityPolicy            validBefore leaves room for synthesis + settlement; bounded lifetime
    ├── Ledger                    (payer, nonce) reserved before the handler runs; outcome of settlement
    └── inner facilitator         verifies (signature, amount, payTo, simulation) and settles
        ├── ThreadedFacilitator   local mode: the SDK's x402FacilitatorSync + FacilitatorWeb3Signer, run in
        │                         worker threads (its web3 calls block)
        └── RemoteFacilitator     facilitator mode: the SDK's HTTPFacilitatorClient (async), its failures
                                  named FacilitatorUnavailableError

Failures of the RPC, the remote facilitator or the ledger are not payment problems: they are noted on the
request's PaymentAttempt and the edge middleware answers 503 instead of 402. The SDK swallows most RPC
exceptions into reason codes, so in local mode the web3 signer is wrapped (`ObservedSigner`) to note them
where they happen.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio
import httpx
from x402 import x402FacilitatorSync
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.mechanisms.evm import FacilitatorWeb3Signer
from x402.mechanisms.evm.constants import (
    ERR_NONCE_ALREADY_USED,
    ERR_SETTLEMENT_PENDING,
    ERR_VALID_AFTER_FUTURE,
    ERR_VALID_BEFORE_EXPIRED,
)
from x402.mechanisms.evm.exact import register_exact_evm_facilitator
from x402.mechanisms.evm.types import TransactionReceipt
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse, SupportedResponse, VerifyResponse

from service.payment.chain import RPC_TRANSPORT_ERRORS
from service.payment.ledger import Ledger, LedgerError, Reservation

logger = logging.getLogger("smalltts.payment")

ERR_PAYMENT_UNAVAILABLE = "payment_unavailable"  # our code: RPC, facilitator or ledger down (answered 503)
ERR_VALIDITY_TOO_LONG = "invalid_exact_evm_payload_authorization_valid_before"  # same field, other bound

T = TypeVar("T")


# --- the request being paid for ------------------------------------------------------------------------------


@dataclass
class PaymentAttempt:
    """One paid request, shared by the edge middleware (which creates it) and the adapter (which fills it)."""

    request_id: str
    route: str
    duration_s: str
    protocol: int  # x402 version of the client's payload: 1 or 2
    legacy_header: bool = False  # it came in X-PAYMENT: answer X-PAYMENT-RESPONSE too
    reserved: tuple[str, str] | None = None  # (payer, nonce) once verified and held
    settle_started: bool = False
    unavailable: str | None = None  # why the payment machinery failed: the request gets 503
    settlement: SettleResponse | None = None  # the outcome of this request's settlement, once known
    reject_message: str | None = None  # a human explanation of a 402 reason, for the response body

    def note_unavailable(self, message: str) -> None:
        if self.unavailable is None:
            self.unavailable = message


current_attempt: ContextVar[PaymentAttempt | None] = ContextVar("smalltts_payment_attempt", default=None)


def _run_with_attempt(attempt: PaymentAttempt | None, fn: Callable[..., T], *args: Any) -> T:
    # Worker threads do not inherit the caller's context reliably: install the attempt explicitly.
    token = current_attempt.set(attempt)
    try:
        return fn(*args)
    finally:
        current_attempt.reset(token)


async def run_in_thread(fn: Callable[..., T], *args: Any, abandon_on_cancel: bool = False, **kwargs: Any) -> T:
    """Run a blocking call in a worker thread, with the current PaymentAttempt visible inside it.

    `abandon_on_cancel=True` lets a timeout return at once while the thread finishes on its own (for chain
    calls, whose outcome reconciliation recovers); ledger writes keep the default and always complete.
    """
    call = functools.partial(fn, *args, **kwargs)
    return await anyio.to_thread.run_sync(
        _run_with_attempt, current_attempt.get(), call, abandon_on_cancel=abandon_on_cancel
    )


# --- the authorization inside a payload ----------------------------------------------------------------------

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_NONCE_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_UINT_RE = re.compile(r"^[0-9]{1,78}$")
_SIGNATURE_RE = re.compile(r"^0x([0-9a-fA-F]{2}){65,4096}$")
UINT256_MAX = 2**256 - 1


@dataclass(frozen=True)
class Authorization:
    """The EIP-3009 authorization of an exact-EVM payload, checked for shape (not for validity)."""

    payer: str
    to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: str


def parse_authorization(payload: Any) -> Authorization:
    """Shape check of `{"signature": ..., "authorization": {...}}`.

    Raises:
        ValueError: what is missing or malformed, for a 400 answer.
    """
    if not isinstance(payload, dict):
        raise ValueError("payload must be an object with signature and authorization")
    signature, auth = payload.get("signature"), payload.get("authorization")
    if not isinstance(signature, str) or not _SIGNATURE_RE.match(signature):
        raise ValueError("payload.signature must be 0x-prefixed hex of at least 65 bytes")
    if not isinstance(auth, dict):
        raise ValueError("payload.authorization must be an object (only EIP-3009 payments are accepted)")
    for name in ("from", "to"):
        if not isinstance(auth.get(name), str) or not _ADDRESS_RE.match(auth[name]):
            raise ValueError(f"payload.authorization.{name} must be a 0x-prefixed 20-byte address")
    numbers: dict[str, int] = {}
    for name in ("value", "validAfter", "validBefore"):
        raw = auth.get(name)
        if not isinstance(raw, str) or not _UINT_RE.match(raw) or int(raw) > UINT256_MAX:
            raise ValueError(f"payload.authorization.{name} must be a decimal uint256 string")
        numbers[name] = int(raw)
    nonce = auth.get("nonce")
    if not isinstance(nonce, str) or not _NONCE_RE.match(nonce):
        raise ValueError("payload.authorization.nonce must be 0x-prefixed 32-byte hex")
    return Authorization(
        payer=auth["from"],
        to=auth["to"],
        value=numbers["value"],
        valid_after=numbers["validAfter"],
        valid_before=numbers["validBefore"],
        nonce=nonce,
    )


# --- our checks ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidityPolicy:
    """The authorization's time window must cover synthesis and settlement, and not much more."""

    min_validity_s: int
    max_timeout_s: int
    slack_s: int

    def check(self, authorization: Authorization, now: float) -> tuple[str, str] | None:
        """(reason code, message) when the window is unacceptable, else None."""
        if authorization.valid_after > now:
            return ERR_VALID_AFTER_FUTURE, "the authorization is not valid yet (validAfter is in the future)"
        remaining_s = authorization.valid_before - now
        if remaining_s < self.min_validity_s:
            return ERR_VALID_BEFORE_EXPIRED, (
                f"the authorization expires in {remaining_s:.0f} s; synthesis and settlement need "
                f"{self.min_validity_s} s (sign for maxTimeoutSeconds = {self.max_timeout_s})"
            )
        if remaining_s > self.max_timeout_s + self.slack_s:
            return ERR_VALIDITY_TOO_LONG, (
                f"the authorization is valid for {remaining_s:.0f} s; at most {self.max_timeout_s} s is accepted"
            )
        return None


# --- inner facilitators --------------------------------------------------------------------------------------


class InnerFacilitator(Protocol):
    async def verify(self, payload: PaymentPayload, requirements: PaymentRequirements) -> VerifyResponse: ...

    async def settle(self, payload: PaymentPayload, requirements: PaymentRequirements) -> SettleResponse: ...

    def get_supported(self) -> SupportedResponse: ...


class ObservedSigner:
    """FacilitatorWeb3Signer, with RPC transport failures noted on the current PaymentAttempt.

    The SDK turns most exceptions raised by its signer into reason codes (a dead RPC during verification
    becomes `invalid_exact_evm_failed_to_verify_signature`), which would wrongly answer 402 for our outage.
    """

    def __init__(self, inner: FacilitatorWeb3Signer) -> None:
        self._inner = inner

    def _observe(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except RPC_TRANSPORT_ERRORS as exc:
            attempt = current_attempt.get()
            if attempt is not None:
                attempt.note_unavailable(f"the payment network's RPC is unreachable ({type(exc).__name__})")
            raise

    @property
    def address(self) -> str:
        return self._inner.address

    def get_addresses(self) -> list[str]:
        return self._inner.get_addresses()

    def get_chain_id(self) -> int:
        return self._observe(self._inner.get_chain_id)

    def read_contract(self, address: str, abi: list[dict[str, Any]], function_name: str, *args: Any) -> Any:
        return self._observe(self._inner.read_contract, address, abi, function_name, *args)

    def verify_typed_data(self, *args: Any) -> bool:
        return self._observe(self._inner.verify_typed_data, *args)

    def write_contract(
        self, address: str, abi: list[dict[str, Any]], function_name: str, *args: Any, data_suffix: str | None = None
    ) -> str:
        return self._observe(
            lambda: self._inner.write_contract(address, abi, function_name, *args, data_suffix=data_suffix)
        )

    def send_transaction(self, to: str, data: bytes) -> str:
        return self._observe(self._inner.send_transaction, to, data)

    def wait_for_transaction_receipt(self, tx_hash: str) -> TransactionReceipt:
        return self._observe(self._inner.wait_for_transaction_receipt, tx_hash)

    def get_balance(self, address: str, token_address: str) -> int:
        return self._observe(self._inner.get_balance, address, token_address)

    def get_code(self, address: str) -> bytes:
        return self._observe(self._inner.get_code, address)


class ThreadedFacilitator:
    """The SDK's synchronous in-process facilitator, each call in a worker thread (its web3 calls block)."""

    def __init__(self, sync_facilitator: x402FacilitatorSync) -> None:
        self._sync = sync_facilitator

    async def verify(self, payload: PaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        return await run_in_thread(self._sync.verify, payload, requirements, abandon_on_cancel=True)

    async def settle(self, payload: PaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        return await run_in_thread(self._sync.settle, payload, requirements, abandon_on_cancel=True)

    def get_supported(self) -> SupportedResponse:
        return self._sync.get_supported()


def build_local_facilitator(
    *, private_key: str, rpc_url: str, network: str, confirmation_timeout_s: float
) -> ThreadedFacilitator:
    """In-process verification and settlement with our own gas key (local mode)."""
    signer = FacilitatorWeb3Signer(
        private_key=private_key, rpc_url=rpc_url, confirmation_timeout_seconds=confirmation_timeout_s
    )
    sync_facilitator = x402FacilitatorSync()
    register_exact_evm_facilitator(sync_facilitator, ObservedSigner(signer), networks=network)
    return ThreadedFacilitator(sync_facilitator)


class FacilitatorUnavailableError(RuntimeError):
    """The remote facilitator could not be reached or answered something other than a verdict."""


class RemoteFacilitator:
    """The SDK's client of a remote facilitator (facilitator mode), with its failures named as such.

    The SDK raises httpx errors for a dead facilitator and a bare ValueError for a non-200 answer or an
    unparseable one: both mean "no verdict", which the adapter answers with 503, not 402.
    """

    def __init__(self, client: HTTPFacilitatorClient) -> None:
        self._client = client

    async def verify(self, payload: PaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        try:
            return await self._client.verify(payload, requirements)
        except (httpx.HTTPError, ValueError) as exc:
            raise FacilitatorUnavailableError(f"facilitator {self._client.url}: {exc}") from exc

    async def settle(self, payload: PaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        try:
            return await self._client.settle(payload, requirements)
        except (httpx.HTTPError, ValueError) as exc:
            raise FacilitatorUnavailableError(f"facilitator {self._client.url}: {exc}") from exc

    def get_supported(self) -> SupportedResponse:
        try:
            return self._client.get_supported()
        except (httpx.HTTPError, ValueError) as exc:
            raise FacilitatorUnavailableError(f"facilitator {self._client.url}: {exc}") from exc


def build_remote_facilitator(url: str, timeout_s: float) -> RemoteFacilitator:
    """Verification and settlement by a remote x402 facilitator (facilitator mode)."""
    return RemoteFacilitator(HTTPFacilitatorClient(FacilitatorConfig(url=url, timeout=timeout_s)))


# --- the adapter -------------------------------------------------------------------------------------------------

# Exceptions that mean "the payment machinery is down", never "the payment is bad". Mapped in one place.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (*RPC_TRANSPORT_ERRORS, FacilitatorUnavailableError, LedgerError)


class GuardedFacilitator:
    """FacilitatorClient for x402ResourceServer: validity window, (payer, nonce) reservation, ledger records,
    worker threads and timeouts around an inner facilitator."""

    def __init__(
        self,
        inner: InnerFacilitator,
        ledger: Ledger,
        policy: ValidityPolicy,
        *,
        owner: str,
        verify_timeout_s: float,
        settle_timeout_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._inner = inner
        self._ledger = ledger
        self._policy = policy
        self._owner = owner
        self._verify_timeout_s = verify_timeout_s
        self._settle_timeout_s = settle_timeout_s
        self._clock = clock

    def get_supported(self) -> SupportedResponse:
        return self._inner.get_supported()

    async def verify(self, payload: PaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        attempt = current_attempt.get() or PaymentAttempt(request_id="-", route="-", duration_s="-", protocol=2)
        authorization = parse_authorization(payload.payload)  # the edge already refused malformed ones
        payer = authorization.payer
        rejection = self._policy.check(authorization, self._clock())
        if rejection is not None:
            attempt.reject_message = rejection[1]
            return VerifyResponse(is_valid=False, invalid_reason=rejection[0], payer=payer)

        reservation = Reservation(
            payer=payer,
            nonce=authorization.nonce,
            amount_atomic=int(requirements.amount),
            asset=requirements.asset,
            network=requirements.network,
            pay_to=requirements.pay_to,
            route=attempt.route,
            request_id=attempt.request_id,
            duration_s=attempt.duration_s,
            valid_before=authorization.valid_before,
            owner=self._owner,
        )
        try:
            reserved = await run_in_thread(self._ledger.reserve, reservation)
        except LedgerError as exc:
            logger.error("payment ledger failed while reserving: %s", exc)
            attempt.note_unavailable("the payment ledger is unavailable")
            return VerifyResponse(is_valid=False, invalid_reason=ERR_PAYMENT_UNAVAILABLE, payer=payer)
        if not reserved:
            attempt.reject_message = "this authorization (payer, nonce) is already being used or was used"
            return VerifyResponse(is_valid=False, invalid_reason=ERR_NONCE_ALREADY_USED, payer=payer)

        result: VerifyResponse | None = None
        try:
            with anyio.fail_after(self._verify_timeout_s):
                result = await self._inner.verify(payload, requirements)
        except TimeoutError:
            attempt.note_unavailable(f"payment verification did not finish within {self._verify_timeout_s} s")
        except UNAVAILABLE_ERRORS as exc:
            attempt.note_unavailable(f"payment verification failed: {type(exc).__name__}: {exc}")
        finally:
            # Whatever ended verification (including an exception we do not map), an unverified
            # reservation must not keep the key.
            if result is None or not result.is_valid or attempt.unavailable is not None:
                await self._discard(payer, authorization.nonce)
        if attempt.unavailable is not None or result is None:
            return VerifyResponse(is_valid=False, invalid_reason=ERR_PAYMENT_UNAVAILABLE, payer=payer)
        if result.is_valid:
            attempt.reserved = (payer, authorization.nonce)
        return result

    async def _discard(self, payer: str, nonce: str) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await run_in_thread(self._ledger.discard, payer, nonce)
            except LedgerError as exc:  # the stale row stays 'reserved'; reconciliation fails it later
                logger.error("payment ledger failed while discarding a reservation: %s", exc)

    async def settle(self, payload: PaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        attempt = current_attempt.get() or PaymentAttempt(request_id="-", route="-", duration_s="-", protocol=2)
        if attempt.settlement is not None:
            # The SDK repeats a settlement_pending once, to wait for the receipt again; the ledger already
            # holds it as pending with its tx, and reconciliation (not a second wait in this request) ends it.
            return attempt.settlement
        result = await self._settle(payload, requirements, attempt)
        attempt.settlement = result
        return result

    async def _settle(
        self, payload: PaymentPayload, requirements: PaymentRequirements, attempt: PaymentAttempt
    ) -> SettleResponse:
        authorization = parse_authorization(payload.payload)
        payer, nonce = authorization.payer, authorization.nonce
        attempt.settle_started = True
        try:
            moved = await run_in_thread(self._ledger.transition, payer, nonce, "served", from_states=("reserved",))
        except LedgerError as exc:
            logger.error("payment ledger failed before settlement: %s", exc)
            attempt.note_unavailable("the payment ledger is unavailable")
            return _settle_failure(ERR_PAYMENT_UNAVAILABLE, requirements, payer)
        if not moved:
            # Only the request that reserved the key may settle it; anything else is a bug or a replay.
            return _settle_failure(ERR_NONCE_ALREADY_USED, requirements, payer)

        result: SettleResponse | None = None
        try:
            with anyio.fail_after(self._settle_timeout_s):
                result = await self._inner.settle(payload, requirements)
        except TimeoutError:
            attempt.note_unavailable(f"payment settlement did not finish within {self._settle_timeout_s} s")
        except UNAVAILABLE_ERRORS as exc:
            attempt.note_unavailable(f"payment settlement failed: {type(exc).__name__}: {exc}")
        await self._record_settlement(payer, nonce, result, attempt)
        if result is None:
            return _settle_failure(ERR_PAYMENT_UNAVAILABLE, requirements, payer)
        return result

    async def _record_settlement(
        self, payer: str, nonce: str, result: SettleResponse | None, attempt: PaymentAttempt
    ) -> None:
        tx_hash = (result.transaction or None) if result is not None else None
        try:
            if result is not None and result.success:
                await run_in_thread(
                    self._ledger.transition, payer, nonce, "settled", from_states=("served",), tx_hash=tx_hash
                )
            elif result is None or attempt.unavailable is not None or result.error_reason == ERR_SETTLEMENT_PENDING:
                # Unknown outcome: a transaction may be on its way. Reconciliation decides from the chain.
                reason = result.error_reason if result is not None else "settlement_outcome_unknown"
                await run_in_thread(
                    self._ledger.transition, payer, nonce, "pending",
                    from_states=("served",), tx_hash=tx_hash, error_reason=reason,
                )  # fmt: skip
            else:
                await run_in_thread(
                    self._ledger.transition, payer, nonce, "failed",
                    from_states=("served",), tx_hash=tx_hash, error_reason=result.error_reason,
                )  # fmt: skip
        except LedgerError as exc:  # the row stays 'served'; reconciliation settles or fails it from the chain
            logger.error("payment ledger failed while recording settlement of %s/%s: %s", payer, nonce, exc)

    async def release(self, attempt: PaymentAttempt, reason: str) -> None:
        """The paid request failed before settlement: free its reservation (it is never settled)."""
        if attempt.reserved is None or attempt.settle_started:
            return
        payer, nonce = attempt.reserved
        attempt.reserved = None
        with anyio.CancelScope(shield=True):  # also runs when the client went away mid-request
            try:
                await run_in_thread(
                    self._ledger.transition, payer, nonce, "released", from_states=("reserved",), error_reason=reason
                )
            except LedgerError as exc:
                logger.error("payment ledger failed while releasing %s/%s: %s", payer, nonce, exc)


def _settle_failure(reason: str, requirements: PaymentRequirements, payer: str) -> SettleResponse:
    return SettleResponse(success=False, error_reason=reason, transaction="", network=requirements.network, payer=payer)

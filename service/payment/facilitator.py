"""The facilitator adapter that the SDK's resource server calls: our checks and the ledger around the SDK's own
verification and settlement.

    GuardedFacilitator            what x402ResourceServer talks to (FacilitatorClient protocol)
    ├── parse_authorization       exactly {signature, authorization}: anything else is refused, here too
    ├── ValidityPolicy            validBefore leaves room for synthesis + settlement; bounded lifetime
    ├── recovers_to_payer         the signature recovers to `from`, locally, before any I/O
    ├── RateLimiter               payment attempts per payer (after recovery: a forger cannot throttle a victim)
    ├── PayerReads                the payer's balance and code, read once per attempt
    ├── Ledger                    (payer, nonce) reserved before the handler runs, within the payer's balance
    └── inner facilitator         verifies (signature, amount, payTo, simulation) and settles (service.payment.inner)

Failures of the RPC, the remote facilitator or the ledger are not payment problems: they are noted on the
request's PaymentAttempt and the edge middleware answers 503 instead of 402. Clients only ever read our own
reason codes and sentences (service.payment.verdict); the exceptions' texts are redacted in the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

import anyio
from x402.mechanisms.evm.constants import (
    ERR_INSUFFICIENT_BALANCE,
    ERR_INVALID_SIGNATURE,
    ERR_NONCE_ALREADY_USED,
    ERR_SETTLEMENT_PENDING,
)
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse, SupportedResponse, VerifyResponse

from service.payment.attempt import PaymentAttempt, current_attempt, redact, run_in_thread
from service.payment.authorization import Authorization, ValidityPolicy, parse_authorization, recovers_to_payer
from service.payment.chain import PayerFunds
from service.payment.inner import InnerFacilitator
from service.payment.ledger import Ledger, LedgerError, Reservation
from service.payment.ratelimit import RateLimiter
from service.payment.verdict import (
    ERR_CONTRACT_WALLET,
    ERR_INVALID_PAYLOAD,
    ERR_PAYMENT_UNAVAILABLE,
    ERR_RATE_LIMITED,
    ERR_SETTLEMENT_UNKNOWN,
    NO_VERDICT_ERRORS,
    REJECTIONS,
    UNAVAILABLE_ERRORS,
    clean_settle,
    clean_verify,
    settle_failure,
    unavailable_message,
)

logger = logging.getLogger("smalltts.payment")


class PayerReads(Protocol):
    """The chain reads made for a payer before anything is reserved (TokenChain; fakes in unit tests)."""

    def payer_funds(self, payer: str) -> PayerFunds: ...


class GuardedFacilitator:
    """FacilitatorClient for x402ResourceServer: exact shape, validity window, local signature recovery,
    per-payer rate limit, funds-capped (payer, nonce) reservation, ledger records, worker threads and
    timeouts around an inner facilitator."""

    def __init__(
        self,
        inner: InnerFacilitator,
        ledger: Ledger,
        policy: ValidityPolicy,
        *,
        chain: PayerReads,
        owner: str,
        verify_timeout_s: float,
        settle_timeout_s: float,
        payer_limit: RateLimiter | None = None,
        allow_contract_wallets: bool = False,
        confirm_settlements: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._inner = inner
        self._ledger = ledger
        self._policy = policy
        self._chain = chain
        self._owner = owner
        self._verify_timeout_s = verify_timeout_s
        self._settle_timeout_s = settle_timeout_s
        self._payer_limit = payer_limit
        self._allow_contract_wallets = allow_contract_wallets
        self._confirm_settlements = confirm_settlements  # a remote facilitator's "settled" is checked on chain
        self._clock = clock

    def get_supported(self) -> SupportedResponse:
        return self._inner.get_supported()

    async def aclose(self) -> None:
        close = getattr(self._inner, "aclose", None)
        if close is not None:
            await close()

    async def verify(self, payload: PaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        attempt = current_attempt.get() or PaymentAttempt(request_id="-", route="-", duration_s="-", protocol=2)
        try:
            authorization = parse_authorization(payload.payload)  # the edge refused these already: again here
        except ValueError as exc:
            attempt.reject_message = str(exc)
            return VerifyResponse(is_valid=False, invalid_reason=ERR_INVALID_PAYLOAD)
        payer = authorization.payer
        rejection = self._policy.check(authorization, self._clock())
        if rejection is not None:
            attempt.reject_message = rejection[1]
            return VerifyResponse(is_valid=False, invalid_reason=rejection[0], payer=payer)
        # Off the event loop: without coincurve, eth-keys recovers in pure Python (5 ms), and a flood of forged
        # headers would stall every other request.
        recovered = await run_in_thread(recovers_to_payer, authorization, requirements)
        # A contract wallet's signature cannot be recovered, so only an operator who accepts contract wallets
        # lets an unrecovered signature reach the chain reads (and then only for a payer that has code). That
        # operator also lets forged headers spend a payer's attempt budget below.
        if not recovered and not self._allow_contract_wallets:
            return self._bad_signature(attempt, payer)
        if self._payer_limit is not None:
            wait_s = self._payer_limit.take(payer.lower())
            if wait_s is not None:
                attempt.retry_after_s = wait_s
                attempt.reject_message = "too many payment attempts for this payer; retry later"
                return VerifyResponse(is_valid=False, invalid_reason=ERR_RATE_LIMITED, payer=payer)

        try:
            with anyio.fail_after(self._verify_timeout_s):
                funds = await run_in_thread(self._chain.payer_funds, payer, abandon_on_cancel=True)
        except TimeoutError:
            return self._unavailable(attempt, payer, "the payment network's RPC did not answer in time")
        except UNAVAILABLE_ERRORS as exc:
            logger.error("payer read failed: %s", redact(f"{type(exc).__name__}: {exc}"))
            return self._unavailable(attempt, payer, unavailable_message(exc))
        if funds.is_contract and not self._allow_contract_wallets:
            attempt.reject_message = REJECTIONS[ERR_CONTRACT_WALLET]
            return VerifyResponse(is_valid=False, invalid_reason=ERR_CONTRACT_WALLET, payer=payer)
        if not recovered and not funds.is_contract:
            return self._bad_signature(attempt, payer)

        outcome = await self._reserve(authorization, requirements, attempt, funds)
        if outcome is not None:
            return outcome

        result: VerifyResponse | None = None
        try:
            with anyio.fail_after(self._verify_timeout_s):
                result = clean_verify(await self._inner.verify(payload, requirements))
        except TimeoutError:
            attempt.note_unavailable(f"payment verification did not finish within {self._verify_timeout_s:g} s")
        except UNAVAILABLE_ERRORS as exc:
            logger.error("payment verification failed: %s", redact(f"{type(exc).__name__}: {exc}"))
            attempt.note_unavailable(unavailable_message(exc))
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

    async def _reserve(
        self,
        authorization: Authorization,
        requirements: PaymentRequirements,
        attempt: PaymentAttempt,
        funds: PayerFunds,
    ) -> VerifyResponse | None:
        """Hold (payer, nonce) within the payer's balance; a refusal to answer instead, or None when held."""
        payer = authorization.payer
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
            outcome = await run_in_thread(self._ledger.reserve_within, reservation, funds.balance_atomic)
        except LedgerError as exc:
            logger.error("payment ledger failed while reserving: %s", redact(str(exc)))
            return self._unavailable(attempt, payer, "the payment ledger is unavailable")
        if outcome == "in_use":
            attempt.reject_message = REJECTIONS[ERR_NONCE_ALREADY_USED]
            return VerifyResponse(is_valid=False, invalid_reason=ERR_NONCE_ALREADY_USED, payer=payer)
        if outcome == "over_funds":
            attempt.reject_message = REJECTIONS[ERR_INSUFFICIENT_BALANCE]
            return VerifyResponse(is_valid=False, invalid_reason=ERR_INSUFFICIENT_BALANCE, payer=payer)
        return None

    def _bad_signature(self, attempt: PaymentAttempt, payer: str) -> VerifyResponse:
        attempt.reject_message = REJECTIONS[ERR_INVALID_SIGNATURE]
        return VerifyResponse(is_valid=False, invalid_reason=ERR_INVALID_SIGNATURE, payer=payer)

    def _unavailable(self, attempt: PaymentAttempt, payer: str, message: str) -> VerifyResponse:
        attempt.note_unavailable(message)
        return VerifyResponse(is_valid=False, invalid_reason=ERR_PAYMENT_UNAVAILABLE, payer=payer)

    async def _discard(self, payer: str, nonce: str) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await run_in_thread(self._ledger.discard, payer, nonce)
            except LedgerError as exc:  # the stale row stays 'reserved'; reconciliation fails it later
                logger.error("payment ledger failed while discarding a reservation: %s", redact(str(exc)))

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
        try:
            authorization = parse_authorization(payload.payload)
        except ValueError:
            return settle_failure(ERR_INVALID_PAYLOAD, requirements, "")
        payer, nonce = authorization.payer, authorization.nonce
        if attempt.reserved is None or attempt.reserved != (payer, nonce):
            # Only the request that reserved this very key may settle it; anything else is a bug or a replay.
            return settle_failure(ERR_NONCE_ALREADY_USED, requirements, payer)
        attempt.settle_started = True
        try:
            moved = await run_in_thread(self._ledger.transition, payer, nonce, "served", from_states=("reserved",))
        except LedgerError as exc:
            logger.error("payment ledger failed before settlement: %s", redact(str(exc)))
            attempt.note_unavailable("the payment ledger is unavailable")
            return settle_failure(ERR_PAYMENT_UNAVAILABLE, requirements, payer)
        if not moved:
            return settle_failure(ERR_NONCE_ALREADY_USED, requirements, payer)

        result: SettleResponse | None = None
        attempt.settle_sent = True
        try:
            with anyio.fail_after(self._settle_timeout_s):
                result = clean_settle(await self._inner.settle(payload, requirements))
        except TimeoutError:
            attempt.note_unavailable(f"payment settlement did not finish within {self._settle_timeout_s:g} s")
        except UNAVAILABLE_ERRORS as exc:
            logger.error("payment settlement failed: %s", redact(f"{type(exc).__name__}: {exc}"))
            attempt.note_unavailable(unavailable_message(exc))
        if result is not None and result.success and self._confirm_settlements:
            result = await self._confirmed(payer, nonce, result)
        await self._record_settlement(payer, nonce, result, attempt)
        if result is None:
            return settle_failure(ERR_SETTLEMENT_UNKNOWN, requirements, payer)
        return result

    async def _confirmed(self, payer: str, nonce: str, result: SettleResponse) -> SettleResponse:
        """A remote facilitator's success, believed only once the chain shows the authorization used."""
        chain = self._chain
        used = getattr(chain, "authorization_used", None)
        if used is None:
            return result
        try:
            with anyio.fail_after(self._verify_timeout_s):
                confirmed = await run_in_thread(used, payer, nonce, abandon_on_cancel=True)
        except NO_VERDICT_ERRORS:
            confirmed = False
        if confirmed:
            return result
        logger.warning("facilitator reported %s/%s settled, the chain does not (yet) show it", payer, nonce)
        return SettleResponse(
            success=False,
            error_reason=ERR_SETTLEMENT_PENDING,
            payer=result.payer,
            transaction=result.transaction,
            network=result.network,
        )

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
                reason = result.error_reason if result is not None else ERR_SETTLEMENT_UNKNOWN
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

    async def settled_outcome(self, payer: str, nonce: str) -> tuple[str, str | None]:
        """What became of a payment whose settlement outcome was unknown: ("settled" | "failed" | "unknown",
        tx hash). Asks the chain when the ledger does not know yet, and records what it learns.

        Raises:
            TimeoutError, ChainUnavailableError, LedgerError: no answer now (the caller says "unknown").
        """
        entry = await run_in_thread(self._ledger.get, payer, nonce)
        if entry is None or entry.state in ("failed", "released"):
            return "failed", None
        if entry.state == "settled":
            return "settled", entry.tx_hash
        used = getattr(self._chain, "authorization_used", None)
        if used is None:
            return "unknown", entry.tx_hash
        with anyio.fail_after(self._verify_timeout_s):
            is_used = await run_in_thread(used, payer, nonce, abandon_on_cancel=True)
        if not is_used:
            return "unknown", entry.tx_hash
        tx_hash = entry.tx_hash
        if tx_hash is None:
            find = getattr(self._chain, "find_authorization_tx", None)
            tx_hash = await run_in_thread(find, payer, nonce) if find is not None else None
        await run_in_thread(
            self._ledger.transition, payer, nonce, "settled",
            from_states=("served", "pending", "reserved"), tx_hash=tx_hash,
        )  # fmt: skip
        return "settled", tx_hash

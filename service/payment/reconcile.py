"""Bring unsettled ledger rows in line with the chain, so that a crash or a slow receipt loses no record of money.

Called at startup (`after_restart=True`) and then every `reconcile_interval_s`. For each row in reserved,
served or pending:

    authorizationState(payer, nonce) is true   -> settled (tx hash from the row, else from the
                                                  AuthorizationUsed log): the money moved to pay_to
    pending, its transaction mined and reverted -> failed ("transaction_failed")
    validBefore passed (plus a grace for block
    timestamps)                                 -> failed ("expired_unsettled"): it can never settle now
    at a restart, reserved by this instance     -> failed ("abandoned_at_restart"): its request died with
                                                  the old process before any settlement was attempted
    at a restart, served by this instance       -> pending ("settlement_interrupted"): a transaction may
                                                  have been sent just before the crash; the rules above
                                                  settle or fail it once the chain or the clock decides
    anything else                               -> left alone (another replica may still be serving it)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from service.payment.chain import TokenChain
from service.payment.ledger import UNSETTLED_STATES, Ledger, LedgerState

logger = logging.getLogger("smalltts.payment")

# A block may carry a timestamp a little behind the wall clock: only this long after validBefore is an
# unused authorization surely dead.
EXPIRY_GRACE_S = 60


@dataclass
class ReconcileReport:
    settled: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    unchanged: int = 0


def reconcile_ledger(
    ledger: Ledger, chain: TokenChain, *, owner: str, now: float, after_restart: bool
) -> ReconcileReport:
    """One pass over the unsettled rows (blocking: run it in a thread).

    Raises:
        ChainUnavailableError: the RPC failed; rows already handled keep their new state.
        LedgerError: the ledger failed.
    """
    report = ReconcileReport()
    for entry in ledger.entries(UNSETTLED_STATES):
        key = f"{entry.payer}/{entry.nonce}"
        if chain.authorization_used(entry.payer, entry.nonce):
            tx_hash = entry.tx_hash or chain.find_authorization_tx(entry.payer, entry.nonce)
            ledger.transition(entry.payer, entry.nonce, "settled", from_states=UNSETTLED_STATES, tx_hash=tx_hash)
            report.settled.append(key)
            logger.info("payment %s reconciled: settled (tx %s, was %s)", key, tx_hash, entry.state)
            continue
        from_state: tuple[LedgerState, ...] = (entry.state,)
        reason: str | None = None
        if entry.state == "pending" and entry.tx_hash and chain.receipt_status(entry.tx_hash) == 0:
            reason = "transaction_failed"
        elif entry.valid_before + EXPIRY_GRACE_S <= now:
            reason = "expired_unsettled"
        elif after_restart and entry.owner == owner and entry.state == "reserved":
            reason = "abandoned_at_restart"
        elif after_restart and entry.owner == owner and entry.state == "served":
            ledger.transition(
                entry.payer, entry.nonce, "pending", from_states=from_state, error_reason="settlement_interrupted"
            )
            report.pending.append(key)
            logger.warning("payment %s reconciled: pending (settlement interrupted by a restart)", key)
            continue
        if reason is None:
            report.unchanged += 1
            continue
        if ledger.transition(entry.payer, entry.nonce, "failed", from_states=from_state, error_reason=reason):
            report.failed.append(key)
            logger.warning("payment %s reconciled: failed (%s, was %s)", key, reason, entry.state)
    return report

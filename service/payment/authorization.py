"""The EIP-3009 authorization inside a payment payload: its exact shape, its time window and its signature,
all checked without I/O, before anything is reserved and before any RPC call.

    parse_authorization(payload)          exactly {signature, authorization{from,to,value,validAfter,...}}
    ValidityPolicy.check(auth, now)       validBefore leaves room for synthesis + settlement; bounded lifetime
    recovers_to_payer(auth, sig, reqs)    the EOA signature recovers to `from` for this token, chain and terms

The shape is exact on purpose: the SDK dispatches on keys (a `permit2Authorization` next to an
`authorization` is verified and settled as Permit2), so anything beyond the two keys we check is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from x402.mechanisms.evm.constants import ERR_VALID_AFTER_FUTURE, ERR_VALID_BEFORE_EXPIRED
from x402.mechanisms.evm.eip712 import hash_eip3009_authorization
from x402.mechanisms.evm.types import ExactEIP3009Authorization
from x402.mechanisms.evm.utils import get_evm_chain_id
from x402.mechanisms.evm.verify import verify_eoa_signature
from x402.schemas import PaymentRequirements

ERR_VALIDITY_TOO_LONG = "invalid_exact_evm_payload_authorization_valid_before"  # same field, other bound

PAYLOAD_KEYS = frozenset({"signature", "authorization"})
AUTHORIZATION_KEYS = frozenset({"from", "to", "value", "validAfter", "validBefore", "nonce"})
EOA_SIGNATURE_BYTES = 65

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_NONCE_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_UINT_RE = re.compile(r"^[0-9]{1,78}$")
_SIGNATURE_RE = re.compile(r"^0x([0-9a-fA-F]{2}){65,4096}$")
UINT256_MAX = 2**256 - 1
SECP256K1_HALF_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 // 2


@dataclass(frozen=True)
class Authorization:
    """The EIP-3009 authorization of an exact-EVM payload, checked for shape (not for validity)."""

    payer: str
    to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: str
    signature: str
    raw: dict[str, str]  # the fields as sent, for hashing exactly what was signed


def parse_authorization(payload: Any) -> Authorization:
    """Shape check of `{"signature": ..., "authorization": {...}}`, nothing more and nothing less.

    Raises:
        ValueError: what is missing, extra or malformed, for a 400 answer.
    """
    if not isinstance(payload, dict):
        raise ValueError("payload must be an object with signature and authorization")
    extra = sorted(set(payload) - PAYLOAD_KEYS)
    if extra:
        raise ValueError(f"payload may hold only signature and authorization (EIP-3009), not {', '.join(extra)}")
    signature, auth = payload.get("signature"), payload.get("authorization")
    if not isinstance(signature, str) or not _SIGNATURE_RE.match(signature):
        raise ValueError("payload.signature must be 0x-prefixed hex of at least 65 bytes")
    if not isinstance(auth, dict):
        raise ValueError("payload.authorization must be an object (only EIP-3009 payments are accepted)")
    extra = sorted(set(auth) - AUTHORIZATION_KEYS)
    if extra:
        raise ValueError(f"payload.authorization has unknown fields: {', '.join(extra)}")
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
        signature=signature,
        raw={name: auth[name] for name in AUTHORIZATION_KEYS},
    )


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


def is_eoa_signature(authorization: Authorization) -> bool:
    return len(authorization.signature) == 2 + 2 * EOA_SIGNATURE_BYTES


def recovers_to_payer(authorization: Authorization, requirements: PaymentRequirements) -> bool:
    """Whether the 65-byte signature recovers to `from` over the EIP-712 digest of these terms (no I/O).

    High-s twins are refused here, as USDC refuses them on chain. Longer signatures (EIP-1271 / ERC-6492
    smart wallets) are not EOA signatures: False.
    """
    if not is_eoa_signature(authorization):
        return False
    extra = requirements.extra or {}
    name, version = extra.get("name"), extra.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        return False
    signature = bytes.fromhex(authorization.signature[2:])
    if int.from_bytes(signature[32:64], "big") > SECP256K1_HALF_N:
        return False
    raw = authorization.raw
    digest = hash_eip3009_authorization(
        ExactEIP3009Authorization(
            from_address=raw["from"],
            to=raw["to"],
            value=raw["value"],
            valid_after=raw["validAfter"],
            valid_before=raw["validBefore"],
            nonce=raw["nonce"],
        ),
        get_evm_chain_id(str(requirements.network)),
        requirements.asset,
        name,
        version,
    )
    try:
        return verify_eoa_signature(digest, signature, authorization.payer)
    except ValueError:  # a v byte that is neither 27/28 nor 0/1
        return False

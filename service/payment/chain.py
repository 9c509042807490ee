"""What the service itself reads from the chain (the SDK does the rest): the chain id at startup, and for
reconciliation whether an authorization was used, by which transaction, and whether a sent one was mined.

Every read is a blocking web3 call; callers run them in threads. Transport failures surface as
`ChainUnavailableError`, the one error type the layer maps to 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from web3 import Web3
from web3.exceptions import TransactionNotFound

from service.errors import ServiceBaseError
from service.payment.attempt import redact

# The pieces of FiatTokenV2 (USDC) that the payment checks and reconciliation need; our test token has them.
TOKEN_READ_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "account", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "authorizationState",
        "stateMutability": "view",
        "inputs": [{"name": "authorizer", "type": "address"}, {"name": "nonce", "type": "bytes32"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "event",
        "name": "AuthorizationUsed",
        "anonymous": False,
        "inputs": [
            {"name": "authorizer", "type": "address", "indexed": True},
            {"name": "nonce", "type": "bytes32", "indexed": True},
        ],
    },
]
# Base makes a block every 2 s: 9000 blocks (5 h) cover any authorization we accept, and stay under the
# 10 000-block eth_getLogs window that public RPCs allow.
LOG_LOOKBACK_BLOCKS = 9_000


class ChainUnavailableError(ServiceBaseError, RuntimeError):
    """The RPC could not be reached or did not answer in time."""


RPC_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (requests.RequestException, ConnectionError, TimeoutError)


@dataclass(frozen=True)
class PayerFunds:
    balance_atomic: int
    is_contract: bool  # code at the address: a smart wallet (or an EIP-7702 delegated account)


class TokenChain:
    """Blocking reads against one RPC and one token contract."""

    def __init__(self, rpc_url: str, asset: str, timeout_s: float) -> None:
        self.rpc_url = rpc_url
        self._w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
        self._token = self._w3.eth.contract(address=Web3.to_checksum_address(asset), abi=TOKEN_READ_ABI)

    def _unavailable(self, exc: BaseException) -> ChainUnavailableError:
        """The one error for a failed read; neither the URL's key nor its path reaches the message."""
        return ChainUnavailableError(f"RPC {redact(self.rpc_url)} unreachable: {redact(str(exc), self.rpc_url)}")

    def chain_id(self) -> int:
        try:
            chain_id: int = self._w3.eth.chain_id
            return chain_id
        except RPC_TRANSPORT_ERRORS as exc:
            raise self._unavailable(exc) from exc

    def client_version(self) -> str:
        """The node's web3_clientVersion ("anvil/v1.7.1", "Geth/..."); "" when it does not say."""
        try:
            version = self._w3.client_version
        except RPC_TRANSPORT_ERRORS as exc:
            raise self._unavailable(exc) from exc
        except ValueError:  # an RPC error answer: the method is not offered
            return ""
        return str(version)

    def has_code(self, address: str) -> bool:
        try:
            return len(self._w3.eth.get_code(Web3.to_checksum_address(address))) > 0
        except RPC_TRANSPORT_ERRORS as exc:
            raise self._unavailable(exc) from exc

    def payer_funds(self, payer: str) -> PayerFunds:
        """The payer's token balance and whether it is a contract: one batched round trip, on every payment
        attempt that passed the signature check, before anything is reserved."""
        address = Web3.to_checksum_address(payer)
        try:
            with self._w3.batch_requests() as batch:
                batch.add(self._token.functions.balanceOf(address))
                batch.add(self._w3.eth.get_code(address))
                results: list[Any] = list(batch.execute())
        except RPC_TRANSPORT_ERRORS as exc:
            raise self._unavailable(exc) from exc
        balance, code = results
        return PayerFunds(balance_atomic=int(balance), is_contract=len(code) > 0)

    def authorization_used(self, payer: str, nonce: str) -> bool:
        try:
            used: bool = self._token.functions.authorizationState(
                Web3.to_checksum_address(payer), bytes.fromhex(nonce.removeprefix("0x"))
            ).call()
            return used
        except RPC_TRANSPORT_ERRORS as exc:
            raise self._unavailable(exc) from exc

    def find_authorization_tx(self, payer: str, nonce: str) -> str | None:
        """Hash of the transaction that used (payer, nonce), from its AuthorizationUsed log; None if not found."""
        try:
            latest = self._w3.eth.block_number
            logs = self._token.events.AuthorizationUsed().get_logs(
                argument_filters={"authorizer": Web3.to_checksum_address(payer), "nonce": bytes.fromhex(nonce[2:])},
                from_block=max(0, latest - LOG_LOOKBACK_BLOCKS),
                to_block=latest,
            )
        except RPC_TRANSPORT_ERRORS as exc:
            raise self._unavailable(exc) from exc
        if not logs:
            return None
        return "0x" + bytes(logs[-1]["transactionHash"]).hex()

    def receipt_status(self, tx_hash: str) -> int | None:
        """1 mined and succeeded, 0 mined and reverted, None not mined (or unknown to this node)."""
        try:
            receipt = self._w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        except RPC_TRANSPORT_ERRORS as exc:
            raise self._unavailable(exc) from exc
        status: int = receipt["status"]
        return status

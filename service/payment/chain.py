"""What the service itself reads from the chain (the SDK does the rest): the chain id at startup, and for
reconciliation whether an authorization was used, by which transaction, and whether a sent one was mined.

Every read is a blocking web3 call; callers run them in threads. Transport failures surface as
`ChainUnavailableError`, the one error type the layer maps to 503.
"""

from __future__ import annotations

from typing import Any

import requests
from web3 import Web3
from web3.exceptions import TransactionNotFound

# The three pieces of FiatTokenV2 (USDC) that reconciliation needs; our test token has the same ones.
TOKEN_READ_ABI: list[dict[str, Any]] = [
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


class ChainUnavailableError(RuntimeError):
    """The RPC could not be reached or did not answer in time."""


RPC_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (requests.RequestException, ConnectionError, TimeoutError)


class TokenChain:
    """Blocking reads against one RPC and one token contract."""

    def __init__(self, rpc_url: str, asset: str, timeout_s: float) -> None:
        self.rpc_url = rpc_url
        self._w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
        self._token = self._w3.eth.contract(address=Web3.to_checksum_address(asset), abi=TOKEN_READ_ABI)

    def chain_id(self) -> int:
        try:
            chain_id: int = self._w3.eth.chain_id
            return chain_id
        except RPC_TRANSPORT_ERRORS as exc:
            raise ChainUnavailableError(f"RPC {self.rpc_url} unreachable: {exc}") from exc

    def has_code(self, address: str) -> bool:
        try:
            return len(self._w3.eth.get_code(Web3.to_checksum_address(address))) > 0
        except RPC_TRANSPORT_ERRORS as exc:
            raise ChainUnavailableError(f"RPC {self.rpc_url} unreachable: {exc}") from exc

    def authorization_used(self, payer: str, nonce: str) -> bool:
        try:
            used: bool = self._token.functions.authorizationState(
                Web3.to_checksum_address(payer), bytes.fromhex(nonce.removeprefix("0x"))
            ).call()
            return used
        except RPC_TRANSPORT_ERRORS as exc:
            raise ChainUnavailableError(f"RPC {self.rpc_url} unreachable: {exc}") from exc

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
            raise ChainUnavailableError(f"RPC {self.rpc_url} unreachable: {exc}") from exc
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
            raise ChainUnavailableError(f"RPC {self.rpc_url} unreachable: {exc}") from exc
        status: int = receipt["status"]
        return status

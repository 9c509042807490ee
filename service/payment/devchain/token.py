"""Deploy and fund the committed test token (MockUSDC) on a dev chain, with locally signed transactions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.contract import Contract

ARTIFACT_PATH = Path(__file__).resolve().parent / "MockUSDC.json"
DEPLOY_GAS = 2_000_000
CALL_GAS = 200_000
RECEIPT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class TokenArtifact:
    abi: list[dict[str, Any]]
    bytecode: str
    source_sha256: str


@lru_cache(maxsize=1)
def load_token_artifact(path: Path = ARTIFACT_PATH) -> TokenArtifact:
    data = json.loads(path.read_text(encoding="utf-8"))
    return TokenArtifact(abi=data["abi"], bytecode=data["bytecode"], source_sha256=data["sourceSha256"])


def token_contract(w3: Web3, address: str) -> Contract:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_token_artifact().abi)


def _send(w3: Web3, private_key: str, tx: dict[str, Any]) -> dict[str, Any]:
    account = Account.from_key(private_key)
    tx = {
        **tx,
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "gasPrice": w3.eth.gas_price,
        "chainId": w3.eth.chain_id,
    }
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt: dict[str, Any] = dict(w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S))
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction {tx_hash.hex()} reverted")
    return receipt


def deploy_token(w3: Web3, deployer_key: str, token_name: str = "USDC") -> str:
    """Deploy MockUSDC named `token_name` (its EIP-712 domain name) and return its checksummed address."""
    artifact = load_token_artifact()
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = _send(w3, deployer_key, {"data": factory.constructor(token_name).data_in_transaction, "gas": DEPLOY_GAS})
    return Web3.to_checksum_address(receipt["contractAddress"])


def mint(w3: Web3, token_address: str, minter_key: str, to: str, amount_atomic: int) -> None:
    """Mint test tokens (MockUSDC's mint is open to anyone; only ever deployed on dev chains)."""
    token = token_contract(w3, token_address)
    data = token.encode_abi("mint", args=[Web3.to_checksum_address(to), amount_atomic])
    _send(w3, minter_key, {"to": token.address, "data": data, "gas": CALL_GAS})


def balance_of(w3: Web3, token_address: str, owner: str) -> int:
    balance: int = token_contract(w3, token_address).functions.balanceOf(Web3.to_checksum_address(owner)).call()
    return balance

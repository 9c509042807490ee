"""The embedded dev chain of `smalltts run`: anvil + our test token + a funded dev payer, described in a JSON file.

    with start_devchain(Path(".smalltts")) as chain:
        print(chain.facts.payer_key)   # .smalltts/devchain.json holds the same facts for scripts

`smalltts run` keeps one state folder per service port (run_state_dir: .smalltts/runs/<port>/).

Accounts are anvil's well-known first three (their keys are printed by every anvil and public): 0 deploys
the token and sends settlement transactions (it holds the ETH for gas), 1 is the dev payer, 2 receives the
payments. Never use them anywhere but on a local chain.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import rlp
from eth_account import Account
from pydantic import Field, SecretStr
from web3 import Web3

from service.payment.devchain.anvil import DEV_CHAIN_ID, AnvilNode, start_anvil
from service.payment.devchain.token import balance_of, deploy_token, mint
from service.payment.settings import PaymentSettings

ANVIL_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
)
FACILITATOR_KEY, PAYER_KEY, PAY_TO_KEY = ANVIL_KEYS
TOKEN_NAME = "USDC"  # Base Sepolia's EIP-712 domain name, since the dev chain uses Base Sepolia's chain id
PAYER_FUNDS_ATOMIC = 1_000_000_000  # 1000 test USDC
FACTS_FILE = "devchain.json"


@dataclass(frozen=True)
class DevChainFacts:
    """The local dev chain, its test token and the funded dev payer: what a script or a page needs to pay the dev
    service. The one type of these facts: written to `<state_dir>/devchain.json`, served by GET /v1/devchain."""

    rpc_url: Annotated[str, Field(description="JSON-RPC URL of the local anvil chain (allows CORS).")]
    chain_id: int
    network: Annotated[str, Field(description="CAIP-2 network id the payments are signed for.")]
    token_address: Annotated[
        str, Field(description="The test USDC token (6 decimals, EIP-712 name 'USDC', version '2').")
    ]
    token_name: Annotated[str, Field(description="The token's EIP-712 domain name.")]
    pay_to: str
    payer_address: Annotated[str, Field(description="The funded dev payer.")]
    payer_key: Annotated[str, Field(description="The dev payer's private key: anvil's public test account 1.")]
    facilitator_address: Annotated[
        str, Field(description="The account that deployed the token and sends settlements (anvil's account 0).")
    ]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def read(cls, path: Path) -> DevChainFacts:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


@dataclass
class DevChain:
    node: AnvilNode
    facts: DevChainFacts
    facilitator_key: str
    facts_path: Path | None

    def stop(self) -> None:
        self.node.stop()


def dev_accounts_facts(rpc_url: str, chain_id: int, token_address: str) -> DevChainFacts:
    """The facts of a dev chain whose token is at `token_address`: the accounts are always anvil's own."""
    return DevChainFacts(
        rpc_url=rpc_url,
        chain_id=chain_id,
        network=f"eip155:{chain_id}",
        token_address=Web3.to_checksum_address(token_address),
        token_name=TOKEN_NAME,
        pay_to=Account.from_key(PAY_TO_KEY).address,
        payer_address=Account.from_key(PAYER_KEY).address,
        payer_key=PAYER_KEY,
        facilitator_address=Account.from_key(FACILITATOR_KEY).address,
    )


def first_contract_address(deployer: str) -> str:
    """Where the first contract created by `deployer` lives: keccak(rlp([deployer, nonce 0]))[12:]."""
    return Web3.to_checksum_address(Web3.keccak(rlp.encode([bytes.fromhex(deployer[2:]), 0]))[12:])


def deploy_devchain_token(rpc_url: str, payer_funds_atomic: int = PAYER_FUNDS_ATOMIC) -> DevChainFacts:
    """Deploy the test token on a running dev node and fund the dev payer.

    Idempotent on a chain that already has it: the token is the first contract account 0 deploys, so its
    address is known in advance; when code is already there it is reused and the payer is topped up.
    """
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    deployer = Account.from_key(FACILITATOR_KEY).address
    token: str = first_contract_address(deployer)
    if len(w3.eth.get_code(Web3.to_checksum_address(token))) == 0:
        token = deploy_token(w3, FACILITATOR_KEY, TOKEN_NAME)
    facts = dev_accounts_facts(rpc_url, w3.eth.chain_id, token)
    funded = balance_of(w3, token, facts.payer_address)
    if funded < payer_funds_atomic:
        mint(w3, token, FACILITATOR_KEY, facts.payer_address, payer_funds_atomic - funded)
    return facts


@contextmanager
def start_devchain(state_dir: Path | None, port: int | None = None) -> Iterator[DevChain]:
    """Start anvil, deploy the token, fund the payer, write the facts file; stop anvil on exit.

    `state_dir` (e.g. `.smalltts`) receives `devchain.json` and `devchain/anvil.log`; None keeps nothing.
    """
    log_path = state_dir / "devchain" / "anvil.log" if state_dir is not None else None
    node = start_anvil(chain_id=DEV_CHAIN_ID, port=port, log_path=log_path)
    facts_path = state_dir / FACTS_FILE if state_dir is not None else None
    written: str | None = None
    try:
        facts = deploy_devchain_token(node.rpc_url)
        if facts_path is not None:
            written = facts.to_json()
            facts_path.write_text(written, encoding="utf-8")
        yield DevChain(node=node, facts=facts, facilitator_key=FACILITATOR_KEY, facts_path=facts_path)
    finally:
        node.stop()
        if facts_path is not None and written is not None:
            remove_if_ours(facts_path, written)  # a stale file would point scripts at a dead chain


def remove_if_ours(path: Path, written: str) -> None:
    """Deletes `path` only while it still holds what this chain wrote: never another run's facts."""
    try:
        if path.read_text(encoding="utf-8") == written:
            path.unlink()
    except FileNotFoundError:
        pass


# --- `smalltts run` -------------------------------------------------------------------------------------------

STATE_DIR = Path(".smalltts")
DEFAULT_PORT = 8545  # the usual local-node port (wallets and tools expect it); a free one if it is taken


def uses_embedded_devchain(payment: PaymentSettings) -> bool:
    """True for the default: local payments on the dev chain, with no RPC given (so we start one)."""
    return payment.mode == "local" and payment.network == "devchain" and payment.rpc_url is None


def devchain_payment_settings(payment: PaymentSettings, chain: DevChain, state_dir: Path) -> PaymentSettings:
    """The payment settings of a service paid on `chain`; its ledger lives and dies with the chain."""
    ledger_path = state_dir / "devchain" / "ledger.sqlite3"
    for stale in (
        ledger_path,
        ledger_path.with_name(ledger_path.name + "-wal"),
        ledger_path.with_name(ledger_path.name + "-shm"),
    ):
        stale.unlink(missing_ok=True)  # rows of a previous chain would be reconciled against the wrong one
    return payment.model_copy(
        update={
            "rpc_url": chain.facts.rpc_url,
            "asset": chain.facts.token_address,
            "token_name": chain.facts.token_name,
            "pay_to": chain.facts.pay_to,
            "facilitator_private_key": SecretStr(chain.facilitator_key),
            "ledger_url": payment.ledger_url or f"sqlite:///{ledger_path}",
            "devchain_started": True,
        }
    )


def describe_devchain(chain: DevChain, service_url: str) -> str:
    """What `smalltts run` prints: the chain, the dev payer's key and how to pay with the Python client."""
    facts = chain.facts
    return (
        f"smalltts: dev chain (anvil) on {facts.rpc_url}, chain id {facts.chain_id}; test USDC at "
        f"{facts.token_address}; payments go to {facts.pay_to}\n"
        f"smalltts: dev payer {facts.payer_address} holds {PAYER_FUNDS_ATOMIC // 10**6} test USDC; its key "
        f"(anvil's public test key, never use it elsewhere): {facts.payer_key}\n"
        f"smalltts: facts for scripts: {chain.facts_path}\n"
        f'smalltts: pay and speak (from any folder):  smalltts pay-say "Hello there." --url {service_url}\n'
        "smalltts: or in Python (official x402 client):\n"
        "    import asyncio, json, httpx\n"
        "    from eth_account import Account\n"
        "    from x402 import x402Client\n"
        "    from x402.http.clients.httpx import x402AsyncTransport\n"
        "    from x402.mechanisms.evm.exact import register_exact_evm_client\n"
        "    from x402.mechanisms.evm.signers import EthAccountSigner\n"
        f"    facts = json.load(open('{chain.facts_path}'))\n"
        "    client = x402Client()\n"
        "    register_exact_evm_client(client, EthAccountSigner(Account.from_key(facts['payer_key'])))\n"
        "    test_usdc = {'network': facts['network'], 'asset': facts['token_address']}\n"
        "    client.set_spend_controls({'allowed_assets': [test_usdc]})\n"
        "    async def main():\n"
        "        async with httpx.AsyncClient(transport=x402AsyncTransport(client), timeout=120) as http:\n"
        f"            reply = await http.post('{service_url}/synthesize', data={{'text': 'Hello there.'}},\n"
        "                                    files={'audio': open('voice.wav', 'rb')})\n"
        "            open('hello.wav', 'wb').write(reply.content)\n"
        "    asyncio.run(main())\n"
    )


def run_state_dir(service_port: int, state_dir: Path = STATE_DIR) -> Path:
    """The folder of one `smalltts run`: its chain's facts, anvil log and ledger, keyed by the service's port.

    Two runs on different ports (the second `make run` with PORT=8001) each keep their own chain and files, so
    one stopping never deletes or resets what the other still serves."""
    return state_dir / "runs" / str(service_port)


@contextmanager
def devchain_for_run(
    payment: PaymentSettings, service_port: int, state_dir: Path = STATE_DIR
) -> Iterator[tuple[PaymentSettings, DevChain | None]]:
    """For `smalltts run`: with the default payment settings, start the dev chain and pay on it; else no-op."""
    if not uses_embedded_devchain(payment):
        yield payment, None
        return
    run_dir = run_state_dir(service_port, state_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    port = DEFAULT_PORT if _port_is_free(DEFAULT_PORT) else None
    with start_devchain(run_dir, port=port) as chain:
        yield devchain_payment_settings(payment, chain, run_dir), chain


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True

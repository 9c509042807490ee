"""Helpers for the payment tests: a live service under uvicorn, a paying client, hand-built payments, PostgreSQL.

Hand-built payments sign EIP-712 with eth-account directly (the attacker's side: a client may sign anything);
the service itself only ever verifies through the x402 SDK.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from fastapi import FastAPI
from web3 import Web3
from x402 import x402Client
from x402.http.clients.httpx import x402AsyncTransport
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner

from service.payment.devchain.anvil import free_port
from service.payment.devchain.launch import DevChain
from service.payment.devchain.token import balance_of, mint
from service.payment.layer import PaymentLayer
from service.payment.ledger import LedgerEntry
from service.payment.settings import PaymentSettings
from smalltts.cli.bench_pay import running_server

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
TRANSFER_TYPES = {
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ]
}


# --- chain ------------------------------------------------------------------------------------------------------


@dataclass
class Wallet:
    address: str
    key: str


def new_payer(chain: DevChain, amount_atomic: int = 1_000_000) -> Wallet:
    """A fresh account holding `amount_atomic` test USDC (and no ETH: paying is gasless)."""
    account = Account.create()
    if amount_atomic:
        mint(web3(chain), chain.facts.token_address, chain.facilitator_key, account.address, amount_atomic)
    return Wallet(address=account.address, key="0x" + bytes(account.key).hex())


def web3(chain: DevChain) -> Web3:
    return Web3(Web3.HTTPProvider(chain.facts.rpc_url))


def balance(chain: DevChain, address: str) -> int:
    return balance_of(web3(chain), chain.facts.token_address, address)


def payment_settings(chain: DevChain, ledger_url: str, **overrides: Any) -> PaymentSettings:
    values: dict[str, Any] = {
        "mode": "local",
        "network": "devchain",
        "rpc_url": chain.facts.rpc_url,
        "asset": chain.facts.token_address,
        "pay_to": chain.facts.pay_to,
        "facilitator_private_key": chain.facilitator_key,
        "ledger_url": ledger_url,
        "reconcile_interval_s": 3600,  # tests reconcile explicitly
        "client_attempts_per_min": 0,  # every test client is 127.0.0.1: the rate-limit tests switch them on
        "payer_attempts_per_min": 0,
        **overrides,
    }
    return PaymentSettings(**values)


# --- live service -----------------------------------------------------------------------------------------------


@dataclass
class LiveService:
    """An app served by uvicorn in a thread on a loopback port: real HTTP, real concurrency."""

    app: FastAPI
    url: str

    @property
    def layer(self) -> PaymentLayer:
        layer: PaymentLayer = self.app.state.payment
        return layer

    def entry(self, payer: str, nonce: str) -> LedgerEntry | None:
        return self.layer.ledger.get(payer, nonce)

    def completed_requests(self) -> int:
        return int(self.app.state.service.pool.stats.requests_completed)


@contextmanager
def live_service(app: FastAPI, startup_timeout_s: float = 60.0) -> Iterator[LiveService]:
    with running_server(app, startup_timeout_s) as url:
        yield LiveService(app=app, url=url)


def paying_client(url: str, payer: Wallet, **kwargs: Any) -> httpx.AsyncClient:
    """The official x402 httpx client: a 402 becomes sign -> retry -> 200 + PAYMENT-RESPONSE."""
    client = x402Client()
    register_exact_evm_client(client, EthAccountSigner(Account.from_key(payer.key)), networks="eip155:84532")
    client.set_spend_controls({"allowed_assets": True})  # our test token is not a default asset
    return httpx.AsyncClient(transport=x402AsyncTransport(client), base_url=url, timeout=60, **kwargs)


# --- hand-built payments ------------------------------------------------------------------------------------------


def decode_header(value: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(value))
    return decoded


def encode_header(payload: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def sign_authorization(
    key: str,
    *,
    token: str,
    chain_id: int,
    name: str,
    to: str,
    value: int,
    valid_after: int = 0,
    valid_before: int | None = None,
    nonce: str | None = None,
) -> tuple[dict[str, str], str]:
    """(authorization, signature) exactly as an x402 client sends them, for any terms the test wants."""
    payer = Account.from_key(key)
    authorization = {
        "from": payer.address,
        "to": Web3.to_checksum_address(to),
        "value": str(value),
        "validAfter": str(valid_after),
        "validBefore": str(valid_before if valid_before is not None else int(time.time()) + 300),
        "nonce": nonce or "0x" + secrets.token_hex(32),
    }
    message = {
        **authorization,
        "value": value,
        "validAfter": int(authorization["validAfter"]),
        "validBefore": int(authorization["validBefore"]),
        "nonce": bytes.fromhex(authorization["nonce"][2:]),
    }
    domain = {"name": name, "version": "2", "chainId": chain_id, "verifyingContract": Web3.to_checksum_address(token)}
    signed = Account.sign_typed_data(key, domain, TRANSFER_TYPES, message)
    return authorization, "0x" + bytes(signed.signature).hex()


def v2_payment(accepted: dict[str, Any], authorization: dict[str, str], signature: str) -> str:
    return encode_header(
        {"x402Version": 2, "accepted": accepted, "payload": {"signature": signature, "authorization": authorization}}
    )


def malleate(signature: str) -> str:
    """The high-s twin of a signature: (r, n - s, v flipped) recovers to the same address."""
    raw = bytes.fromhex(signature[2:])
    r, s, v = raw[:32], int.from_bytes(raw[32:64], "big"), raw[64]
    twin_s = (SECP256K1_N - s).to_bytes(32, "big")
    return "0x" + (r + twin_s + bytes([55 - v if v in (27, 28) else v ^ 1])).hex()


# --- PostgreSQL ---------------------------------------------------------------------------------------------------


def find_postgres_bin() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


@dataclass
class PostgresServer:
    url_base: str  # postgresql://postgres@127.0.0.1:PORT
    bin_dir: Path
    data_dir: Path
    run_as: str | None

    def create_database(self) -> str:
        import psycopg

        name = "ledger_" + secrets.token_hex(6)
        with psycopg.connect(f"{self.url_base}/postgres", autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return f"{self.url_base}/{name}"


def _as_user(command: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *command] if user else command


@contextmanager
def start_postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server (initdb + pg_ctl in a temp dir); root runs it as the `postgres` user."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found")
    run_as: str | None = None
    if os.geteuid() == 0:  # postgres refuses to run as root
        run_as = "postgres"
        pwd.getpwnam(run_as)
    root = Path(tempfile.mkdtemp(prefix="smalltts-pg-"))
    data_dir = root / "data"
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = free_port()
    subprocess.run(
        _as_user([str(bin_dir / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", "postgres", "--no-sync"], run_as),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as_user(
            [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options, "-l", str(root / "log"), "-w", "start"],
            run_as,
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield PostgresServer(
            url_base=f"postgresql://postgres@127.0.0.1:{port}", bin_dir=bin_dir, data_dir=data_dir, run_as=run_as
        )
    finally:
        subprocess.run(
            _as_user([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "stop"], run_as),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


# --- synthesizers that misbehave on purpose ---------------------------------------------------------------------


class HoldingSynthesizer:
    """The real synthesizer; while `hold()` is on, calls wait (and set `entered`) until `release()`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self._go = threading.Event()
        self._go.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def hold(self) -> None:
        self.entered.clear()
        self._go.clear()

    def release(self) -> None:
        self._go.set()

    def synthesize_batch(self, requests: Any) -> Any:
        self.entered.set()
        if not self._go.wait(timeout=60):
            raise RuntimeError("HoldingSynthesizer: the test never released the hold")
        return self.inner.synthesize_batch(requests)


class FailingSynthesizer:
    """The real synthesizer, except that its next `failures` calls raise (a model or device failure)."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def synthesize_batch(self, requests: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("FailingSynthesizer: synthesis failed on purpose")
        return self.inner.synthesize_batch(requests)


def rpc(chain: DevChain, method: str, *params: Any) -> Any:
    """A raw JSON-RPC call (anvil's evm_* methods)."""
    reply = httpx.post(chain.facts.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    reply.raise_for_status()
    return reply.json().get("result")


def facilitator_app(chain: DevChain) -> FastAPI:
    """A remote x402 facilitator over HTTP (/supported, /verify, /settle): the SDK's in-process facilitator
    behind the wire format its HTTPFacilitatorClient speaks, for facilitator-mode tests."""
    from x402 import x402FacilitatorSync
    from x402.mechanisms.evm import FacilitatorWeb3Signer
    from x402.mechanisms.evm.exact import register_exact_evm_facilitator
    from x402.schemas import PaymentPayload, PaymentRequirements

    facilitator = x402FacilitatorSync()
    signer = FacilitatorWeb3Signer(private_key=chain.facilitator_key, rpc_url=chain.facts.rpc_url)
    register_exact_evm_facilitator(facilitator, signer, networks=chain.facts.network)
    app = FastAPI()
    app.state.calls = []

    def unpack(body: dict[str, Any]) -> tuple[PaymentPayload, PaymentRequirements]:
        return (
            PaymentPayload.model_validate(body["paymentPayload"]),
            PaymentRequirements.model_validate(body["paymentRequirements"]),
        )

    @app.get("/supported")
    def supported() -> dict[str, Any]:
        return facilitator.get_supported().model_dump(by_alias=True, exclude_none=True)

    @app.post("/verify")
    def verify(body: dict[str, Any]) -> dict[str, Any]:
        app.state.calls.append("verify")
        return facilitator.verify(*unpack(body)).model_dump(by_alias=True, exclude_none=True)

    @app.post("/settle")
    def settle(body: dict[str, Any]) -> dict[str, Any]:
        app.state.calls.append("settle")
        return facilitator.settle(*unpack(body)).model_dump(by_alias=True, exclude_none=True)

    return app

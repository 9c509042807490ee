"""Payment settings: the `payment` group of the service settings (`SMALLTTS_PAYMENT__<FIELD>` in the environment).

    SMALLTTS_PAYMENT__MODE=local SMALLTTS_PAYMENT__NETWORK=base-sepolia \\
    SMALLTTS_PAYMENT__PAY_TO=0x... SMALLTTS_PAYMENT__FACILITATOR_PRIVATE_KEY=0x... smalltts serve

Replicas that each settle with their own key (a Kubernetes StatefulSet, docker/k8s/) mount one folder of keys,
one file per replica named by its instance id, and set SMALLTTS_PAYMENT__FACILITATOR_KEY_DIR instead: each
replica then reads `<dir>/<instance_id>` and refuses to start when another file there holds the same key.

The default (mode local on the dev chain) is what `smalltts run` / `make run` completes with a freshly started
anvil; `smalltts serve` without a chain or an explicit configuration refuses to start rather than serve for
free. Tests that do not exercise payments set `mode="off"`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from decimal import Decimal
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from web3 import Web3

from service.payment.networks import NetworkName

PaymentMode = Literal["off", "local", "facilitator"]


class PaymentSettings(BaseModel):
    """x402 payment knobs; see the README section "Payments" for what each one does."""

    # Validation errors would otherwise quote their input, and one of these inputs is a private key.
    model_config = ConfigDict(hide_input_in_errors=True)

    mode: PaymentMode = Field(
        default="local",
        description="off: every route is free (logged loudly); local: verify and settle in-process with web3 "
        "and our own gas key; facilitator: a remote x402 facilitator verifies and settles.",
    )
    network: NetworkName = Field(
        default="devchain", description="base (eip155:8453), base-sepolia (eip155:84532) or devchain (local anvil)."
    )
    rpc_url: str | None = Field(
        default=None, description="JSON-RPC URL of the network; unset: the network's public RPC (none for devchain)."
    )
    asset: str | None = Field(
        default=None, description="Token address; unset: the network's USDC (required for devchain)."
    )
    token_name: str | None = Field(
        default=None,
        description="EIP-712 domain name of `asset`; unset: the network's USDC name ('USD Coin' / 'USDC').",
    )
    pay_to: str | None = Field(default=None, description="Address that receives the payments.")
    facilitator_private_key: SecretStr | None = Field(
        default=None,
        description="local mode: key of the account that sends settlement transactions and pays their gas.",
    )
    facilitator_key_dir: Path | None = Field(
        default=None,
        description="local mode, instead of facilitator_private_key: a folder of settlement keys, one file per "
        "replica named by its instance_id (a Kubernetes Secret mounted as a volume); this replica settles with "
        "<dir>/<instance_id> and refuses to start when another file there holds the same key.",
    )
    facilitator_url: str | None = Field(default=None, description="facilitator mode: base URL of the x402 facilitator.")
    price_per_minute_usd: Decimal = Field(
        default=Decimal("0.01"), gt=0, description="Price of one minute of generated audio, in USD (1 USDC = 1 USD)."
    )
    max_timeout_s: int = Field(
        default=300, ge=30, le=3600, description="maxTimeoutSeconds in the requirements: how long clients sign for."
    )
    min_validity_s: int = Field(
        default=150,
        ge=10,
        description="An authorization must stay valid at least this long after verification: synthesis "
        "(request_timeout_s) plus settlement (confirmation_timeout_s) must fit in it.",
    )
    validity_slack_s: int = Field(
        default=30, ge=0, le=600, description="Clock skew tolerated on validBefore beyond now + max_timeout_s."
    )
    confirmation_timeout_s: float = Field(
        default=20.0, gt=0, le=300, description="Longest wait for a settlement receipt; after it: settlement_pending."
    )
    rpc_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Longest wait for verification (RPC or facilitator) before 503."
    )
    ledger_url: str | None = Field(
        default=None,
        description="sqlite:///path or postgresql://user@host/db; unset: sqlite:///<data_dir>/payments.sqlite3. "
        "Use PostgreSQL when several replicas share one pay_to.",
    )
    accept_v1: bool = Field(default=True, description="Also accept x402 v1 payments (X-PAYMENT header).")
    reconcile_interval_s: float = Field(
        default=30.0, gt=0, description="How often unsettled ledger entries are checked against the chain."
    )
    public_url: str | None = Field(
        default=None, description="Public base URL used in /.well-known/x402; unset: taken from each request."
    )
    replicas: int = Field(
        default=1,
        ge=1,
        description="Processes that serve this pay_to. Above 1 the ledger must be PostgreSQL (one shared ledger): "
        "separate SQLite files would each accept the same payment once.",
    )
    allow_contract_wallets: bool = Field(
        default=False,
        description="Accept payers with code (EIP-1271 smart wallets). Off: a contract's isValidSignature may answer "
        "differently in eth_call and in the settlement transaction, which would cost gas on every request.",
    )
    min_charge_usd: Decimal = Field(
        default=Decimal("0"),
        ge=0,
        description="Smallest amount a paid request costs, in USD; set it above the gas one settlement costs.",
    )
    client_attempts_per_min: float = Field(
        default=600, ge=0, description="Payment attempts one client address may make per minute (0: no limit)."
    )
    payer_attempts_per_min: float = Field(
        default=300, ge=0, description="Payment attempts one payer may make per minute, after its signature is checked."
    )
    attempts_burst: int = Field(
        default=60, ge=1, description="Attempts allowed at once before the per-minute rates apply."
    )
    max_threads: int = Field(
        default=16, ge=1, le=256, description="Worker threads for payment calls (RPC, ledger), apart from all others."
    )
    devchain_started: bool = Field(
        default=False,
        description="Set by `smalltts run` when it started the local anvil itself: only then does GET /v1/devchain "
        "publish the dev chain's RPC URL and the dev payer's key.",
    )
    instance_id: str | None = Field(
        default=None,
        description="Names this replica in the ledger; unset: the host name. Keep it stable across restarts.",
    )

    @field_validator("pay_to", "asset")
    @classmethod
    def check_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not Web3.is_address(value):
            raise ValueError(f"not an EVM address: {value!r}")
        return Web3.to_checksum_address(value)

    @field_validator("facilitator_private_key", mode="before")
    @classmethod
    def check_key(cls, value: object) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(raw, str):
            raise ValueError("facilitator_private_key must be a string of hex digits")
        return SecretStr(parse_private_key(raw, "facilitator_private_key"))

    @field_validator("facilitator_url")
    @classmethod
    def check_facilitator_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("facilitator_url must be an http(s) URL")
        if url.scheme == "http" and not is_loopback_host(url.hostname):
            raise ValueError("facilitator_url must use https unless the facilitator runs on this machine (loopback)")
        return value

    @model_validator(mode="after")
    def pick_key_from_dir(self) -> PaymentSettings:
        """In local mode with a key folder: this replica's key is the file named by its instance id."""
        if self.facilitator_key_dir is None or self.mode != "local":
            return self
        instance = self.instance_id or socket.gethostname()
        if not KEY_FILE_NAME_RE.fullmatch(instance):
            raise ValueError(
                f"instance_id {instance!r} cannot name a key file in facilitator_key_dir: use letters, digits, "
                "'.', '_' and '-'"
            )
        folder = self.facilitator_key_dir
        keys = read_key_dir(folder)
        if instance not in keys:
            names = ", ".join(sorted(keys)) or "no key files"
            raise ValueError(
                f"no settlement key for instance {instance} in facilitator_key_dir {folder} (it holds {names}): "
                f"add a file named {instance} with this replica's own key"
            )
        mine = keys[instance].lower()
        twins = sorted(name for name, key in keys.items() if name != instance and key.lower() == mine)
        if twins:
            raise ValueError(
                f"the settlement key of {instance} in {folder} is also the key of {', '.join(twins)}: every replica "
                "needs its own key (replicas settling with one key collide on its transaction nonces)"
            )
        given = self.facilitator_private_key
        if given is not None and given.get_secret_value().lower() != mine:
            raise ValueError("set facilitator_private_key or facilitator_key_dir, not both")
        # Pinned, so that the ledger's owner is the name the key was chosen by, whatever the host name becomes.
        self.instance_id = instance
        self.facilitator_private_key = SecretStr(keys[instance])
        return self

    @model_validator(mode="after")
    def check_mode(self) -> PaymentSettings:
        if self.min_validity_s >= self.max_timeout_s:
            raise ValueError(
                f"min_validity_s ({self.min_validity_s}) must be below max_timeout_s ({self.max_timeout_s}): "
                "clients sign for max_timeout_s"
            )
        if self.confirmation_timeout_s >= self.min_validity_s:
            raise ValueError(
                f"confirmation_timeout_s ({self.confirmation_timeout_s}) must be below min_validity_s "
                f"({self.min_validity_s})"
            )
        if self.replicas > 1 and self.mode != "off" and not (self.ledger_url or "").startswith("postgres"):
            raise ValueError(
                f"replicas={self.replicas} share one pay_to: the ledger must be one PostgreSQL database "
                "(ledger_url=postgresql://...), not a SQLite file per process"
            )
        return self


# A Kubernetes pod name (a DNS label) or any other plain file name; never a path.
KEY_FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")


def parse_private_key(raw: str, what: str) -> str:
    """`0x` + 64 hex digits from a key as written by hand or read from a file; the error never quotes it."""
    text = raw.strip().removeprefix("0x")  # a key file or a secret mount often ends with a newline
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ValueError(f"{what} must be 32 bytes of hex (64 hex digits, optional 0x)")
    return "0x" + text


def read_key_dir(folder: Path) -> dict[str, str]:
    """Every key file of a key folder, by file name. Hidden entries are skipped: a mounted Secret keeps its data
    in `..data/` and links each key file into it.

    Raises:
        ValueError: the folder cannot be read, or a file does not hold one key (named, never quoted).
    """
    try:
        paths = sorted(path for path in folder.iterdir() if not path.name.startswith(".") and path.is_file())
        raw = {path.name: path.read_bytes() for path in paths}
    except OSError as exc:
        raise ValueError(
            f"cannot read the settlement keys in facilitator_key_dir {folder}: {exc.strerror or type(exc).__name__}"
        ) from None
    keys = {}
    for name, data in raw.items():
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"key file {folder / name} is not a hex key (non-ASCII bytes)") from None
        keys[name] = parse_private_key(text, f"key file {folder / name}")
    return keys


def is_loopback_host(host: str) -> bool:
    """localhost, *.localhost (RFC 6761: never sent to DNS; compose's anvil alias uses it) or a loopback IP."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

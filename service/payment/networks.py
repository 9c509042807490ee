"""The chains we take payments on: chain id, USDC address and the token's EIP-712 domain, per network.

The EIP-712 domain name differs between chains ("USD Coin" on Base mainnet, "USDC" on Base Sepolia); a
wrong name still yields a well-formed signature that simply does not recover to the payer, so it lives here
once, next to the address it belongs to. The dev chain reuses Base Sepolia's chain id and domain name with
our own test token, whose address is only known once it is deployed (`PaymentSettings.asset`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NetworkName = Literal["base", "base-sepolia", "devchain"]


@dataclass(frozen=True)
class NetworkConfig:
    name: NetworkName
    caip2: str  # x402 v2 network id, e.g. "eip155:8453"
    chain_id: int
    v1_name: str  # x402 v1 network name, e.g. "base"
    usdc_address: str | None  # None: deployed at start (dev chain)
    eip712_name: str
    eip712_version: str
    decimals: int
    public_rpc_url: str | None
    testnet: bool


NETWORKS: dict[NetworkName, NetworkConfig] = {
    "base": NetworkConfig(
        name="base",
        caip2="eip155:8453",
        chain_id=8453,
        v1_name="base",
        usdc_address="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        eip712_name="USD Coin",
        eip712_version="2",
        decimals=6,
        public_rpc_url="https://mainnet.base.org",
        testnet=False,
    ),
    "base-sepolia": NetworkConfig(
        name="base-sepolia",
        caip2="eip155:84532",
        chain_id=84532,
        v1_name="base-sepolia",
        usdc_address="0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        eip712_name="USDC",
        eip712_version="2",
        decimals=6,
        public_rpc_url="https://sepolia.base.org",
        testnet=True,
    ),
    "devchain": NetworkConfig(
        name="devchain",
        caip2="eip155:84532",
        chain_id=84532,
        v1_name="base-sepolia",
        usdc_address=None,
        eip712_name="USDC",
        eip712_version="2",
        decimals=6,
        public_rpc_url=None,
        testnet=True,
    ),
}


@dataclass(frozen=True)
class PaymentTerms:
    """Everything a payment requirement states except the amount: resolved once from the settings."""

    network: NetworkConfig
    asset: str  # checksummed token address
    token_name: str  # EIP-712 domain name of that token
    token_version: str
    pay_to: str  # checksummed recipient
    max_timeout_s: int

    @property
    def extra(self) -> dict[str, str]:
        return {"name": self.token_name, "version": self.token_version}

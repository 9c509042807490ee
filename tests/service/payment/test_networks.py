"""Our network table against the SDK's own defaults (USDC address and EIP-712 domain per chain)."""

from __future__ import annotations

from x402.mechanisms.evm.default_assets import get_default_asset

from service.payment.networks import NETWORKS


def test_usdc_address_and_domain_match_the_sdk_defaults() -> None:
    for name in ("base", "base-sepolia"):
        network = NETWORKS[name]
        default = get_default_asset(network.caip2)
        assert network.usdc_address is not None
        assert network.usdc_address.lower() == default["asset"].lower()
        assert (network.eip712_name, network.eip712_version, network.decimals) == (
            default["name"], default["version"], default["decimals"],
        )  # fmt: skip
    assert NETWORKS["base"].eip712_name == "USD Coin" and NETWORKS["base-sepolia"].eip712_name == "USDC"


def test_the_dev_chain_looks_like_base_sepolia_with_its_own_token() -> None:
    devchain, sepolia = NETWORKS["devchain"], NETWORKS["base-sepolia"]
    assert (devchain.caip2, devchain.chain_id, devchain.v1_name) == (sepolia.caip2, 84532, "base-sepolia")
    assert devchain.usdc_address is None and devchain.public_rpc_url is None

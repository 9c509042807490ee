"""GET /v1/devchain: the local dev chain's facts, including the funded dev payer's key, for the web page.

The route exists only when the service takes payment on the `devchain` network through the loopback anvil
that `smalltts run` started itself (`devchain_started`); on Base, Base Sepolia, or a dev chain pointed at any
other RPC (the dev chain shares Base Sepolia's chain id) it is never registered, so neither a key nor an RPC
URL can leak there. The key is
anvil's public test account 1 (printed by every anvil), funded by the launcher with test USDC: it lets the
page pay in a bare browser with no wallet extension. It is worthless anywhere but on that local chain.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from eth_account import Account
from fastapi import APIRouter

from service.payment.devchain.launch import FACILITATOR_KEY, PAYER_KEY, DevChainFacts
from service.payment.networks import NETWORKS
from service.payment.settings import PaymentSettings, is_loopback_host


def build_devchain_router(payment: PaymentSettings) -> APIRouter | None:
    """The router for GET /v1/devchain, or None unless payments run on a configured dev chain."""
    if payment.mode == "off" or payment.network != "devchain" or not payment.devchain_started:
        return None
    if payment.rpc_url is None or not is_loopback_host(urlsplit(payment.rpc_url).hostname or ""):
        return None
    if payment.rpc_url is None or payment.asset is None or payment.pay_to is None:
        return None  # the payment layer refuses this configuration itself; nothing to describe
    network = NETWORKS["devchain"]
    facts = DevChainFacts(
        rpc_url=payment.rpc_url,
        chain_id=network.chain_id,
        network=network.caip2,
        token_address=payment.asset,
        token_name=payment.token_name or network.eip712_name,
        pay_to=payment.pay_to,
        payer_address=Account.from_key(PAYER_KEY).address,
        payer_key=PAYER_KEY,
        # The service started this chain itself (devchain_started), and the launcher deploys with account 0.
        facilitator_address=Account.from_key(FACILITATOR_KEY).address,
    )
    router = APIRouter(tags=["devchain"])

    @router.get("/v1/devchain", operation_id="devchain-get_devchain", summary="Dev chain facts and dev payer")
    async def get_devchain() -> DevChainFacts:
        """The local chain, its test token and the funded dev payer (dev chain only)."""
        return facts

    return router

"""GET /v1/devchain: present with the dev payer's key on the dev chain, absent on every other configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from service.app import create_app
from service.payment.devchain.launch import PAYER_KEY
from service.payment.settings import PaymentSettings
from service.settings import Settings

pytestmark = pytest.mark.anyio

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PAY_TO = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
FACILITATOR_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


DEVCHAIN = {
    "mode": "local", "network": "devchain", "asset": TOKEN, "pay_to": PAY_TO, "facilitator_private_key": FACILITATOR_KEY
}  # fmt: skip


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def settings(tmp_path: Path, **payment: Any) -> Settings:
    # Building the app does no I/O: the chain is only contacted by the lifespan, which these tests never run.
    return Settings(data_dir=tmp_path / "data", frontend_dir=tmp_path / "none", payment=PaymentSettings(**payment))


async def get_devchain(app_settings: Settings) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(app_settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/v1/devchain")


async def test_dev_chain_hands_out_the_funded_dev_payer(tmp_path: Path) -> None:
    reply = await get_devchain(
        settings(
            tmp_path,
            mode="local",
            network="devchain",
            rpc_url="http://127.0.0.1:8545",
            asset=TOKEN,
            pay_to=PAY_TO,
            facilitator_private_key=FACILITATOR_KEY,
            devchain_started=True,
        )
    )
    assert reply.status_code == 200
    assert reply.json() == {
        "rpc_url": "http://127.0.0.1:8545",
        "chain_id": 84532,
        "network": "eip155:84532",
        "token_address": TOKEN,
        "token_name": "USDC",
        "pay_to": PAY_TO,
        "payer_address": Account.from_key(PAYER_KEY).address,
        "payer_key": PAYER_KEY,
        "facilitator_address": Account.from_key(FACILITATOR_KEY).address,
    }


@pytest.mark.parametrize(
    "payment",
    [
        {"mode": "off"},
        {"mode": "local", "network": "base-sepolia", "pay_to": PAY_TO, "facilitator_private_key": FACILITATOR_KEY},
        {"mode": "local", "network": "base", "pay_to": PAY_TO, "facilitator_private_key": FACILITATOR_KEY},
        # The dev chain shares Base Sepolia's chain id: a devchain setting aimed at a remote RPC (a real
        # Sepolia node, its API key in the URL) or at an anvil this service did not start publishes nothing.
        {**DEVCHAIN, "rpc_url": "https://base-sepolia.example/v2/API-KEY", "devchain_started": True},
        {**DEVCHAIN, "rpc_url": "http://127.0.0.1:8545"},
    ],
    ids=["payments-off", "base-sepolia", "base", "devchain-remote-rpc", "devchain-not-started-here"],
)
async def test_no_dev_payer_outside_the_dev_chain(tmp_path: Path, payment: dict[str, Any]) -> None:
    app_settings = settings(tmp_path, **payment)
    reply = await get_devchain(app_settings)
    assert reply.status_code == 404
    assert "/v1/devchain" not in create_app(app_settings).openapi()["paths"]

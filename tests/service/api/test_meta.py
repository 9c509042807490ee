"""GET /v1/config: the public limits and facts the frontend reads before it asks for speech."""

from __future__ import annotations

import pytest

from service.payment.settings import PaymentSettings
from tests.service.conftest import ServeFactory

pytestmark = pytest.mark.anyio


async def test_config_lists_the_public_limits(serve: ServeFactory) -> None:
    async with serve(max_text_chars=300, max_duration_s=20.0) as served:
        config = (await served.client.get("/v1/config")).json()
    assert config["max_text_chars"] == 300
    assert config["max_duration_s"] == 20.0
    assert config["max_upload_bytes"] == 2 * 1024 * 1024
    assert config["sample_rate_hz"] == 24_000
    assert config["trained"] is False
    assert config["precision"] == "fp32"
    assert "laughter" in config["tags"]
    assert config["formats"] == ["wav", "flac", "ogg"]
    assert (config["max_steps"], config["default_steps"], config["sampler"]) == (32, 4, "student")


async def test_config_says_which_extension_free_wallets_the_page_may_offer(serve: ServeFactory) -> None:
    async with serve() as served:
        config = (await served.client.get("/v1/config")).json()
    assert (config["walletconnect_project_id"], config["contract_wallets_accepted"]) == (None, False)

    project_id = "0123456789abcdef0123456789abcdef"
    payment = PaymentSettings(mode="off", allow_contract_wallets=True)
    async with serve(walletconnect_project_id=project_id, payment=payment) as served:
        config = (await served.client.get("/v1/config")).json()
    assert (config["walletconnect_project_id"], config["contract_wallets_accepted"]) == (project_id, True)

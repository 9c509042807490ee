"""Payment settings: validation and the SMALLTTS_PAYMENT__* environment."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from web3 import Web3

from service.payment.settings import PaymentSettings
from service.settings import Settings


def test_environment_reaches_the_nested_payment_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMALLTTS_PAYMENT__MODE", "facilitator")
    monkeypatch.setenv("SMALLTTS_PAYMENT__NETWORK", "base")
    monkeypatch.setenv("SMALLTTS_PAYMENT__PRICE_PER_MINUTE_USD", "0.05")
    monkeypatch.setenv("SMALLTTS_PAYMENT__PAY_TO", "0x" + "ab" * 20)
    payment = Settings().payment
    assert (payment.mode, payment.network, payment.price_per_minute_usd) == ("facilitator", "base", Decimal("0.05"))
    assert payment.pay_to == Web3.to_checksum_address("0x" + "ab" * 20)


def test_defaults_take_payments_on_the_dev_chain() -> None:
    payment = PaymentSettings()
    assert (payment.mode, payment.network, payment.price_per_minute_usd) == ("local", "devchain", Decimal("0.01"))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"pay_to": "0x1234"}, "not an EVM address"),
        ({"asset": "USDC"}, "not an EVM address"),
        ({"facilitator_private_key": "0x1234"}, "32 bytes of hex"),
        ({"price_per_minute_usd": "0"}, "greater than 0"),
        ({"min_validity_s": 400}, "must be below max_timeout_s"),
        ({"confirmation_timeout_s": 200}, "must be below min_validity_s"),
        ({"mode": "free"}, "mode"),
        ({"facilitator_url": "http://facilitator.example.com"}, "must use https"),
        ({"facilitator_url": "ftp://127.0.0.1"}, "http"),
        ({"replicas": 2}, "must be one PostgreSQL"),
        ({"replicas": 3, "ledger_url": "sqlite:///shared.sqlite3"}, "must be one PostgreSQL"),
    ],
)
def test_invalid_settings_name_the_problem(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PaymentSettings(**values)  # type: ignore[arg-type]


def test_private_key_is_normalised_and_never_printed() -> None:
    payment = PaymentSettings(facilitator_private_key="ab" * 32)  # type: ignore[arg-type]
    assert payment.facilitator_private_key is not None
    assert payment.facilitator_private_key.get_secret_value() == "0x" + "ab" * 32
    assert "abab" not in repr(payment) and "abab" not in payment.model_dump_json()


def test_a_key_read_from_a_file_with_a_trailing_newline_is_accepted() -> None:
    payment = PaymentSettings(facilitator_private_key="0x" + "ab" * 32 + "\n")  # type: ignore[arg-type]
    assert payment.facilitator_private_key is not None
    assert payment.facilitator_private_key.get_secret_value() == "0x" + "ab" * 32


@pytest.mark.parametrize("build", [PaymentSettings, lambda **v: Settings(payment=v)])
def test_a_bad_key_is_refused_without_quoting_it(build: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "0x" + "c3d4" * 15 + "zzzz"  # 64 digits, 4 of them not hex
    with pytest.raises(ValidationError) as refused:
        build(facilitator_private_key=key)
    assert "c3d4" not in str(refused.value) and "32 bytes of hex" in str(refused.value)
    monkeypatch.setenv("SMALLTTS_PAYMENT__FACILITATOR_PRIVATE_KEY", key)
    with pytest.raises(ValidationError) as from_env:
        Settings()
    assert "c3d4" not in str(from_env.value)


@pytest.mark.parametrize(
    "url", ["https://x402.example.com/facilitator", "http://127.0.0.1:4021", "http://localhost:4021", "http://[::1]:1"]
)
def test_facilitator_urls_that_are_https_or_loopback_are_accepted(url: str) -> None:
    assert PaymentSettings(facilitator_url=url).facilitator_url == url


def test_several_replicas_share_one_postgresql_ledger() -> None:
    payment = PaymentSettings(replicas=3, ledger_url="postgresql://smalltts@db/smalltts")
    assert payment.replicas == 3

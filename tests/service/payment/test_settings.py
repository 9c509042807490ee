"""Payment settings: validation and the SMALLTTS_PAYMENT__* environment."""

from __future__ import annotations

from decimal import Decimal

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

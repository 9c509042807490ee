"""Payment settings: validation and the SMALLTTS_PAYMENT__* environment."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
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


# --- one key per replica from a folder of keys (a mounted Kubernetes Secret) ---------------------------------

KEYS = {f"smalltts-{n}": "0x" + f"{n + 1:02x}" * 32 for n in range(3)}


def _secret_volume(folder: Path, keys: dict[str, str]) -> Path:
    """The layout kubelet gives a mounted Secret: the files in a hidden timestamped folder, `..data` linking to
    it, and one link per key at the top."""
    data = folder / "..2026_01_01_00_00_00.000000001"
    data.mkdir(parents=True)
    for name, key in keys.items():
        (data / name).write_text(key + "\n", encoding="ascii")
    (folder / "..data").symlink_to(data.name)
    for name in keys:
        (folder / name).symlink_to(f"..data/{name}")
    return folder


@pytest.mark.parametrize("instance", sorted(KEYS))
def test_each_replica_settles_with_the_key_named_by_its_instance_id(instance: str, tmp_path: Path) -> None:
    folder = _secret_volume(tmp_path / "keys", KEYS)
    payment = PaymentSettings(facilitator_key_dir=folder, instance_id=instance)
    assert payment.facilitator_private_key is not None
    assert payment.facilitator_private_key.get_secret_value() == KEYS[instance]
    assert payment.instance_id == instance


def test_the_instance_id_defaults_to_the_host_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A StatefulSet pod's host name is its name (smalltts-1): stable across restarts, one per ordinal.
    monkeypatch.setattr("socket.gethostname", lambda: "smalltts-1")
    payment = PaymentSettings(facilitator_key_dir=_secret_volume(tmp_path / "keys", KEYS))
    assert payment.instance_id == "smalltts-1"
    assert payment.facilitator_private_key is not None
    assert payment.facilitator_private_key.get_secret_value() == KEYS["smalltts-1"]


def test_the_key_folder_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _secret_volume(tmp_path / "keys", KEYS)
    monkeypatch.setenv("SMALLTTS_PAYMENT__MODE", "local")  # the test session's default is off
    monkeypatch.setenv("SMALLTTS_PAYMENT__FACILITATOR_KEY_DIR", str(folder))
    monkeypatch.setenv("SMALLTTS_PAYMENT__INSTANCE_ID", "smalltts-2")
    payment = Settings().payment
    assert payment.facilitator_private_key is not None
    assert payment.facilitator_private_key.get_secret_value() == KEYS["smalltts-2"]


def test_a_replica_without_its_own_key_file_does_not_start(tmp_path: Path) -> None:
    folder = _secret_volume(tmp_path / "keys", KEYS)
    with pytest.raises(ValidationError) as refused:
        PaymentSettings(facilitator_key_dir=folder, instance_id="smalltts-3")
    message = str(refused.value)
    assert "no settlement key for instance smalltts-3" in message
    assert "smalltts-0, smalltts-1, smalltts-2" in message and "0101" not in message


@pytest.mark.parametrize("twin", ["0x" + "01" * 32, "01" * 32, ("0x" + "01" * 32).upper().replace("0X", "0x")])
def test_two_replicas_never_share_a_key(twin: str, tmp_path: Path) -> None:
    # The same key spelled differently (no 0x, upper case) is still the same account, and the same nonces.
    folder = _secret_volume(tmp_path / "keys", {**KEYS, "smalltts-3": twin})
    for instance in ("smalltts-0", "smalltts-3"):
        with pytest.raises(ValidationError) as refused:
            PaymentSettings(facilitator_key_dir=folder, instance_id=instance)
        message = str(refused.value)
        assert "every replica needs its own key" in message and "0101" not in message
    # The other replicas are not affected by that mistake.
    assert PaymentSettings(facilitator_key_dir=folder, instance_id="smalltts-1").instance_id == "smalltts-1"


def test_a_bad_key_file_is_named_never_quoted(tmp_path: Path) -> None:
    folder = _secret_volume(tmp_path / "keys", {**KEYS, "smalltts-1": "0x" + "c3d4" * 15 + "zzzz"})
    with pytest.raises(ValidationError) as refused:
        PaymentSettings(facilitator_key_dir=folder, instance_id="smalltts-0")
    assert "smalltts-1 must be 32 bytes of hex" in str(refused.value) and "c3d4" not in str(refused.value)
    (folder / "..data" / "smalltts-1").write_bytes(b"\xff" * 64)
    with pytest.raises(ValidationError, match="non-ASCII"):
        PaymentSettings(facilitator_key_dir=folder, instance_id="smalltts-0")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"instance_id": "../smalltts-0"}, "cannot name a key file"),
        ({"instance_id": "smalltts-0", "facilitator_private_key": "0x" + "ab" * 32}, "not both"),
    ],
)
def test_the_key_folder_refuses_paths_and_a_second_key(values: dict[str, Any], message: str, tmp_path: Path) -> None:
    folder = _secret_volume(tmp_path / "keys", KEYS)
    with pytest.raises(ValidationError, match=message):
        PaymentSettings(facilitator_key_dir=folder, **values)


def test_a_missing_key_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read the settlement keys"):
        PaymentSettings(facilitator_key_dir=tmp_path / "absent", instance_id="smalltts-0")


def test_the_key_folder_is_read_only_when_settling_here(tmp_path: Path) -> None:
    # Free or remote settlement needs no key of ours: a missing folder must not stop such a service.
    for mode in ("off", "facilitator"):
        payment = PaymentSettings(mode=mode, facilitator_key_dir=tmp_path / "absent", instance_id="smalltts-0")
        assert payment.facilitator_private_key is None

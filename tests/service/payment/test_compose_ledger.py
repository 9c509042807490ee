"""Issue 14, finding 7: every set of compose services that takes payments to one pay_to shares one ledger.

Two ledgers for one pay_to would each accept the same payment header once (served twice, settled once).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.payment.settings import PaymentSettings
from tests.docker.test_compose import STACKS, environment, load_services

PROCESS_GROUPS = (("tts", "tts-gpu"), ("tts-1", "tts-2", "tts-3"))


def _ledger(spec: dict[str, object]) -> tuple[str, str | None]:
    """(ledger URL, the volume behind a SQLite file) of one service."""
    url = environment(spec).get("SMALLTTS_PAYMENT__LEDGER_URL", "sqlite:////data/payments.sqlite3")
    if not url.startswith("sqlite:///"):
        return url, None
    folder = str(Path(url.removeprefix("sqlite:///")).parent)
    volumes = [str(v) for v in spec.get("volumes") or []]  # type: ignore[attr-defined]
    mounted = [volume.split(":")[0] for volume in volumes if volume.split(":")[1] == folder]
    return url, mounted[0] if mounted else None


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.name)
@pytest.mark.parametrize("group", PROCESS_GROUPS, ids=lambda g: "+".join(g))
def test_processes_paid_to_one_address_share_one_ledger(stack: Path, group: tuple[str, ...]) -> None:
    services = load_services(stack)
    ledgers = {_ledger(services[name]) for name in group}
    assert len(ledgers) == 1, f"{stack.name}: {group} keep separate ledgers {ledgers}"
    [(url, volume)] = ledgers
    assert url.startswith("postgresql://") or volume is not None  # a SQLite file on a volume they all mount


def test_sqlite_is_refused_where_replicas_are_declared() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        PaymentSettings(replicas=2, ledger_url="sqlite:////ledger/payments.sqlite3")


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.name)
def test_the_scaled_replicas_declare_how_many_they_are(stack: Path) -> None:
    services = load_services(stack)
    replicas = PROCESS_GROUPS[1]
    assert {environment(services[name]).get("SMALLTTS_PAYMENT__REPLICAS") for name in replicas} == {str(len(replicas))}

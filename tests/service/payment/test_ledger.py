"""The payment ledger on SQLite and on a real PostgreSQL server: atomic reservations under concurrency (threads
and separate connections, as several replicas would), guarded state transitions, release and discard."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service.payment.ledger import Ledger, LedgerError, Reservation

NONCE = "0x" + "ab" * 32


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, ledger_url_for: Callable[[str], str]) -> str:
    return ledger_url_for(request.param)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    ledger = Ledger(ledger_url)
    ledger.open()
    yield ledger
    ledger.close()


def _reservation(payer: str = "0xAbCd" + "00" * 18, nonce: str = NONCE, request_id: str = "r1") -> Reservation:
    return Reservation(
        payer=payer, nonce=nonce, amount_atomic=334, asset="0x" + "cc" * 20, network="eip155:84532",
        pay_to="0x" + "bb" * 20, route="POST /synthesize", request_id=request_id, duration_s="2",
        valid_before=2_000_000_000, owner="test",
    )  # fmt: skip


def test_one_of_many_concurrent_reservations_wins_across_connections(ledger_url: str) -> None:
    # One Ledger (one connection) per thread: the database itself, not our lock, must decide.
    ledgers = [Ledger(ledger_url) for _ in range(8)]
    for each in ledgers:
        each.open()
    barrier = threading.Barrier(len(ledgers))
    wins: list[bool] = []

    def reserve(each: Ledger, index: int) -> None:
        barrier.wait()
        wins.append(each.reserve(_reservation(request_id=f"r{index}")))

    threads = [threading.Thread(target=reserve, args=(each, i)) for i, each in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = ledgers[0].entries()
    for each in ledgers:
        each.close()
    assert sorted(wins) == [False] * 7 + [True]
    assert len(rows) == 1 and rows[0].state == "reserved"


def test_reservations_in_flight_never_exceed_the_funds_across_connections(ledger_url: str) -> None:
    # Eight requests of one payer, distinct nonces, at once, each on its own connection (as replicas would):
    # funds of 700 cover two of 334. Without the payer lock, concurrent snapshots would each see room.
    ledgers = [Ledger(ledger_url) for _ in range(8)]
    for each in ledgers:
        each.open()
    barrier = threading.Barrier(len(ledgers))
    outcomes: list[str] = []

    def reserve(each: Ledger, index: int) -> None:
        barrier.wait()
        outcomes.append(each.reserve_within(_reservation(nonce="0x" + f"{index:064x}"), funds_atomic=700))

    threads = [threading.Thread(target=reserve, args=(each, i)) for i, each in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    in_flight = ledgers[0].in_flight_atomic("0xAbCd" + "00" * 18)
    for each in ledgers:
        each.close()
    assert sorted(outcomes) == ["over_funds"] * 6 + ["reserved"] * 2
    assert in_flight == 668


def test_replicas_starting_together_create_the_tables_once(ledger_url: str) -> None:
    # A StatefulSet scaled up at once starts its pods together: each opens the fresh ledger at the same moment.
    ledgers = [Ledger(ledger_url) for _ in range(8)]
    barrier = threading.Barrier(len(ledgers))
    failures: list[LedgerError] = []

    def open_ledger(each: Ledger) -> None:
        barrier.wait()
        try:
            each.open()
        except LedgerError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_ledger, args=(each,)) for each in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        assert ledgers[0].reserve(_reservation()) and not ledgers[-1].reserve(_reservation(request_id="r2"))
    finally:
        for each in ledgers:
            each.close()


def test_settled_rows_free_the_funds_they_held(ledger: Ledger) -> None:
    first = _reservation(nonce="0x" + "01" * 32)
    assert ledger.reserve_within(first, funds_atomic=334) == "reserved"
    assert ledger.reserve_within(_reservation(nonce="0x" + "02" * 32), funds_atomic=334) == "over_funds"
    assert ledger.reserve_within(first, funds_atomic=10_000) == "in_use"
    ledger.transition(first.payer, first.nonce, "released", from_states=("reserved",))
    assert ledger.reserve_within(_reservation(nonce="0x" + "02" * 32), funds_atomic=334) == "reserved"


def test_keys_are_case_insensitive(ledger: Ledger) -> None:
    assert ledger.reserve(_reservation(payer="0x" + "AB" * 20, nonce="0x" + "CD" * 32))
    assert not ledger.reserve(_reservation(payer="0x" + "ab" * 20, nonce="0x" + "cd" * 32))
    entry = ledger.get("0x" + "Ab" * 20, "0x" + "cD" * 32)
    assert entry is not None and entry.payer == "0x" + "ab" * 20


def test_transitions_only_from_the_allowed_states(ledger: Ledger) -> None:
    payer = _reservation().payer
    ledger.reserve(_reservation())
    assert not ledger.transition(payer, NONCE, "settled", from_states=("served",))  # not served yet
    assert ledger.transition(payer, NONCE, "served", from_states=("reserved",))
    assert ledger.transition(payer, NONCE, "pending", from_states=("served",), tx_hash="0x" + "11" * 32,
                             error_reason="settlement_pending")  # fmt: skip
    assert ledger.transition(payer, NONCE, "settled", from_states=("pending",))
    entry = ledger.get(payer, NONCE)
    assert entry is not None
    assert (entry.state, entry.tx_hash, entry.error_reason) == ("settled", "0x" + "11" * 32, None)  # hash kept
    assert entry.updated_at >= entry.created_at
    assert not ledger.reserve(_reservation())  # a settled authorization is never taken again


def test_released_rows_can_be_reserved_again(ledger: Ledger) -> None:
    payer = _reservation().payer
    ledger.reserve(_reservation())
    ledger.transition(payer, NONCE, "released", from_states=("reserved",), error_reason="handler_failed:422")
    assert ledger.reserve(_reservation(request_id="r2"))
    entry = ledger.get(payer, NONCE)
    assert entry is not None and (entry.state, entry.request_id, entry.error_reason) == ("reserved", "r2", None)


def test_discard_removes_only_an_unverified_reservation(ledger: Ledger) -> None:
    payer = _reservation().payer
    ledger.reserve(_reservation())
    ledger.transition(payer, NONCE, "served", from_states=("reserved",))
    ledger.discard(payer, NONCE)
    assert ledger.get(payer, NONCE) is not None  # served: kept
    other = "0x" + "ef" * 32
    ledger.reserve(_reservation(nonce=other))
    ledger.discard(payer, other)
    assert ledger.get(payer, other) is None


def test_entries_filter_by_state(ledger: Ledger) -> None:
    for index in range(3):
        ledger.reserve(_reservation(nonce=f"0x{index:064x}"))
    ledger.transition(_reservation().payer, f"0x{0:064x}", "served", from_states=("reserved",))
    assert [e.nonce for e in ledger.entries(["served"])] == [f"0x{0:064x}"]
    assert len(ledger.entries(["reserved", "served"])) == 3


def test_sqlite_ledger_uses_wal(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.sqlite3'}")
    ledger.open()
    ledger.close()
    assert (tmp_path / "l.sqlite3").is_file()
    import sqlite3

    with sqlite3.connect(tmp_path / "l.sqlite3") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_ledger_syncs_every_commit_to_disk(tmp_path: Path) -> None:
    # synchronous is a per-connection setting, so it is read from the ledger's own connection.
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.sqlite3'}")
    ledger.open()
    _, rows = ledger._execute("PRAGMA synchronous", ())
    ledger.close()
    assert rows == [(2,)]  # FULL; NORMAL (1) may lose the last commits of a WAL database on a power cut


def test_unreachable_or_unopened_ledgers_raise_ledger_error(tmp_path: Path) -> None:
    from service.payment.devchain.anvil import free_port

    with pytest.raises(LedgerError, match="cannot connect"):
        Ledger(f"postgresql://nobody@127.0.0.1:{free_port()}/none").open()
    with pytest.raises(LedgerError, match="not open"):
        Ledger(f"sqlite:///{tmp_path / 'x.sqlite3'}").get("0x", "0x")
    with pytest.raises(ValueError, match="ledger_url"):
        Ledger("mysql://somewhere/db")

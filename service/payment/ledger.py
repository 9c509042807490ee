"""The payment ledger: one row per (payer, nonce) authorization, reserved before any paid work starts.

    reserved --> served --> settled                 verified; audio produced; transfer confirmed on chain
        |          |   \\--> pending --> settled     transfer sent, receipt not seen in time; reconciled later
        |          |              \\--> failed
        |          \\--> failed                      settlement refused or reverted; the audio was withheld
        \\--> released                               the request failed (4xx/5xx/timeout): never settled, and
                                                     the same authorization may be presented again

A reservation is capped by the payer's on-chain balance: the amounts of its rows still in flight (reserved,
served, pending) plus the new one may not exceed it, so that a payer who can pay once cannot have many
requests verified, synthesized and sent to settle at once (all but one would revert at our gas cost). The cap
errs on the safe side: between a settlement being mined and its row turning `settled`, its amount is both gone
from the balance and still in flight, so a payer at the very edge of its balance may be refused for a moment.

A reservation is an atomic insert on the primary key (payer, nonce): of any number of concurrent copies of
one payment, exactly one gets the row, on one process (SQLite, WAL) or across replicas (PostgreSQL). A
released row can be reserved again; a row in any other state cannot. Verification failures delete their
reservation, since nothing was ever owed. Signatures are never stored: until validBefore they are bearer
instruments, and reconciliation only needs (payer, nonce) and the chain.

The API is synchronous (sqlite3 / psycopg); the service calls it from worker threads. One connection per
ledger, serialised by a lock: the ledger is never the bottleneck next to synthesis.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, Protocol

from service.errors import ServiceBaseError

LedgerState = Literal["reserved", "served", "pending", "settled", "failed", "released"]
UNSETTLED_STATES: tuple[LedgerState, ...] = ("reserved", "served", "pending")
ReserveOutcome = Literal["reserved", "in_use", "over_funds"]


class LedgerError(ServiceBaseError, RuntimeError):
    """The ledger's database failed or could not be reached."""


@dataclass(frozen=True)
class Reservation:
    """What is known when a payment is verified: the row that `reserve` inserts."""

    payer: str
    nonce: str
    amount_atomic: int
    asset: str
    network: str
    pay_to: str
    route: str
    request_id: str
    duration_s: str
    valid_before: int
    owner: str


@dataclass(frozen=True)
class LedgerEntry(Reservation):
    state: LedgerState
    tx_hash: str | None
    error_reason: str | None
    created_at: float
    updated_at: float


_COLUMNS = tuple(f.name for f in fields(LedgerEntry))
_RESERVATION_COLUMNS = tuple(f.name for f in fields(Reservation))

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS payments (
        payer TEXT NOT NULL,
        nonce TEXT NOT NULL,
        amount_atomic BIGINT NOT NULL,
        asset TEXT NOT NULL,
        network TEXT NOT NULL,
        pay_to TEXT NOT NULL,
        route TEXT NOT NULL,
        request_id TEXT NOT NULL,
        duration_s TEXT NOT NULL,
        valid_before BIGINT NOT NULL,
        owner TEXT NOT NULL,
        state TEXT NOT NULL,
        tx_hash TEXT,
        error_reason TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (payer, nonce)
    )
    """,
    "CREATE INDEX IF NOT EXISTS payments_state ON payments (state)",
)


# The advisory-lock key of schema creation (payers lock on their addresses; a hash collision only makes one wait).
_SCHEMA_LOCK = "smalltts-ledger-schema"


def payment_key(payer: str, nonce: str) -> tuple[str, str]:
    """Ledger key of an authorization: lower-cased, so that "0xAB.." and "0xab.." are one payment."""
    return payer.lower(), nonce.lower()


class _Database(Protocol):
    """The two dialects differ only in how they connect and in their placeholder."""

    placeholder: str

    def execute(self, sql: str, params: Sequence[Any]) -> tuple[int, list[tuple[Any, ...]]]: ...

    def execute_serialized(self, key: str, sql: str, params: Sequence[Any]) -> int:
        """Run a write that reads other rows, serialised with every other such write for `key`."""
        ...

    def close(self) -> None: ...


class _Sqlite:
    placeholder = "?"

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit (isolation_level=None): every statement is its own transaction, all we need.
            self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
            self._connection.execute("PRAGMA journal_mode=WAL")
            # FULL: a row is on disk when the statement returns; NORMAL (WAL) may lose the last commits on a
            # power cut, and these rows are money.
            self._connection.execute("PRAGMA synchronous=FULL")
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"payment ledger (sqlite): cannot open {path}: {exc}") from exc

    def execute(self, sql: str, params: Sequence[Any]) -> tuple[int, list[tuple[Any, ...]]]:
        try:
            cursor = self._connection.execute(sql, tuple(params))
            rows = cursor.fetchall()
            return cursor.rowcount, rows
        except sqlite3.Error as exc:
            raise LedgerError(f"payment ledger (sqlite): {exc}") from exc

    def execute_serialized(self, key: str, sql: str, params: Sequence[Any]) -> int:
        # One statement holds SQLite's write lock from its read to its write, also across processes.
        return self.execute(sql, params)[0]

    def close(self) -> None:
        self._connection.close()


class _Postgres:
    placeholder = "%s"

    def __init__(self, url: str) -> None:
        import psycopg  # imported here: SQLite-only deployments never load the driver

        self._psycopg = psycopg
        self._url = url
        self._connection: Any = None
        self._connect()

    def _connect(self) -> None:
        try:
            self._connection = self._psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        except self._psycopg.Error as exc:
            raise LedgerError(f"payment ledger (postgresql): cannot connect: {exc}") from exc

    def execute(self, sql: str, params: Sequence[Any]) -> tuple[int, list[tuple[Any, ...]]]:
        if self._connection is None or self._connection.closed:
            self._connect()
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(sql, tuple(params))
                rows = cursor.fetchall() if cursor.description is not None else []
                return cursor.rowcount, rows
        except self._psycopg.OperationalError as exc:
            # A lost connection is replaced on the next call; this one fails (503), it is not retried,
            # because a statement whose commit we did not see may have committed.
            self._connection.close()
            raise LedgerError(f"payment ledger (postgresql): {exc}") from exc
        except self._psycopg.Error as exc:
            raise LedgerError(f"payment ledger (postgresql): {exc}") from exc

    def execute_serialized(self, key: str, sql: str, params: Sequence[Any]) -> int:
        # Under READ COMMITTED one statement reads a snapshot taken before it waited for anything; the
        # advisory lock, taken by a statement of its own, makes the write's snapshot see every earlier one.
        if self._connection is None or self._connection.closed:
            self._connect()
        try:
            with self._connection.transaction(), self._connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
                cursor.execute(sql, tuple(params))
                return int(cursor.rowcount)
        except self._psycopg.OperationalError as exc:
            self._connection.close()
            raise LedgerError(f"payment ledger (postgresql): {exc}") from exc
        except self._psycopg.Error as exc:
            raise LedgerError(f"payment ledger (postgresql): {exc}") from exc

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def open_database(url: str) -> _Database:
    if url.startswith("sqlite:///"):
        return _Sqlite(Path(url.removeprefix("sqlite:///")))
    return _Postgres(url)


class Ledger:
    """(payer, nonce) reservations and what became of them; thread-safe, synchronous.

    Constructing one does no I/O; `open()` connects and creates the table (at service startup).
    """

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError(f"ledger_url must start with sqlite:/// or postgresql://, got {url.split(':', 1)[0]}:")
        self.url = url
        self._db: _Database | None = None
        self._lock = threading.Lock()
        self._clock = clock

    @property
    def dialect(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"

    def open(self) -> None:
        """Connect and create the table if needed. Raises LedgerError when the database is unreachable."""
        with self._lock:
            if self._db is None:
                self._db = open_database(self.url)
            # Serialised: replicas that start together (a StatefulSet scaled up at once) would otherwise race in
            # PostgreSQL's catalog, where two concurrent CREATE ... IF NOT EXISTS can both try to create.
            for statement in _SCHEMA:
                self._db.execute_serialized(_SCHEMA_LOCK, statement, ())

    def _execute(self, sql: str, params: Sequence[Any]) -> tuple[int, list[tuple[Any, ...]]]:
        with self._lock:
            if self._db is None:
                raise LedgerError("payment ledger is not open")
            if self._db.placeholder != "?":
                sql = sql.replace("?", self._db.placeholder)
            return self._db.execute(sql, params)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def reserve(self, reservation: Reservation) -> bool:
        """Take the (payer, nonce) key for this request; False when another request holds or used it."""
        payer, nonce = payment_key(reservation.payer, reservation.nonce)
        values = {**{name: getattr(reservation, name) for name in _RESERVATION_COLUMNS}, "payer": payer, "nonce": nonce}
        now = self._clock()
        columns = (*_RESERVATION_COLUMNS, "state", "tx_hash", "error_reason", "created_at", "updated_at")
        params = [*(values[name] for name in _RESERVATION_COLUMNS), "reserved", None, None, now, now]
        updates = ", ".join(f"{name} = excluded.{name}" for name in columns if name not in ("payer", "nonce"))
        count, _ = self._execute(
            f"INSERT INTO payments ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
            f"ON CONFLICT (payer, nonce) DO UPDATE SET {updates} WHERE payments.state = 'released'",
            params,
        )
        return count == 1

    def reserve_within(self, reservation: Reservation, funds_atomic: int) -> ReserveOutcome:
        """Take the key only if the payer's rows in flight, this one included, stay within `funds_atomic`.

        Returns "reserved", "in_use" (another request holds or used this key) or "over_funds".
        """
        payer, nonce = payment_key(reservation.payer, reservation.nonce)
        values = {**{name: getattr(reservation, name) for name in _RESERVATION_COLUMNS}, "payer": payer, "nonce": nonce}
        now = self._clock()
        columns = (*_RESERVATION_COLUMNS, "state", "tx_hash", "error_reason", "created_at", "updated_at")
        params = [*(values[name] for name in _RESERVATION_COLUMNS), "reserved", None, None, now, now]
        updates = ", ".join(f"{name} = excluded.{name}" for name in columns if name not in ("payer", "nonce"))
        in_flight = ", ".join(f"'{state}'" for state in UNSETTLED_STATES)
        sql = (
            f"INSERT INTO payments ({', '.join(columns)}) SELECT {', '.join('?' for _ in columns)} "
            f"WHERE (SELECT COALESCE(SUM(amount_atomic), 0) FROM payments WHERE payer = ? AND state IN ({in_flight})) "
            f"+ ? <= ? ON CONFLICT (payer, nonce) DO UPDATE SET {updates} WHERE payments.state = 'released'"
        )
        with self._lock:
            if self._db is None:
                raise LedgerError("payment ledger is not open")
            if self._db.placeholder != "?":
                sql = sql.replace("?", self._db.placeholder)
            count = self._db.execute_serialized(payer, sql, [*params, payer, reservation.amount_atomic, funds_atomic])
        if count == 1:
            return "reserved"
        existing = self.get(payer, nonce)
        return "in_use" if existing is not None and existing.state != "released" else "over_funds"

    def in_flight_atomic(self, payer: str) -> int:
        """Sum of the payer's amounts not yet settled or failed."""
        in_flight = ", ".join(f"'{state}'" for state in UNSETTLED_STATES)
        _, rows = self._execute(
            f"SELECT COALESCE(SUM(amount_atomic), 0) FROM payments WHERE payer = ? AND state IN ({in_flight})",
            [payer.lower()],
        )
        return int(rows[0][0])

    def discard(self, payer: str, nonce: str) -> None:
        """Drop a reservation whose verification failed (it never became a payment)."""
        self._execute(
            "DELETE FROM payments WHERE payer = ? AND nonce = ? AND state = 'reserved'", payment_key(payer, nonce)
        )

    def transition(
        self,
        payer: str,
        nonce: str,
        state: LedgerState,
        *,
        from_states: Iterable[LedgerState],
        tx_hash: str | None = None,
        error_reason: str | None = None,
    ) -> bool:
        """Move the row to `state` if it is in one of `from_states`; a tx hash, once known, is kept."""
        allowed = tuple(from_states)
        count, _ = self._execute(
            "UPDATE payments SET state = ?, tx_hash = COALESCE(?, tx_hash), error_reason = ?, updated_at = ? "
            f"WHERE payer = ? AND nonce = ? AND state IN ({', '.join('?' for _ in allowed)})",
            [state, tx_hash, error_reason, self._clock(), *payment_key(payer, nonce), *allowed],
        )
        return count == 1

    def get(self, payer: str, nonce: str) -> LedgerEntry | None:
        _, rows = self._execute(
            f"SELECT {', '.join(_COLUMNS)} FROM payments WHERE payer = ? AND nonce = ?", payment_key(payer, nonce)
        )
        return _entry(rows[0]) if rows else None

    def entries(self, states: Iterable[LedgerState] | None = None, limit: int = 1000) -> list[LedgerEntry]:
        """Rows, oldest first, optionally only those in `states`."""
        wanted = tuple(states) if states is not None else ()
        where = f"WHERE state IN ({', '.join('?' for _ in wanted)}) " if wanted else ""
        _, rows = self._execute(
            f"SELECT {', '.join(_COLUMNS)} FROM payments {where}ORDER BY created_at LIMIT ?", [*wanted, limit]
        )
        return [_entry(row) for row in rows]


def _entry(row: Sequence[Any]) -> LedgerEntry:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["amount_atomic"] = int(values["amount_atomic"])
    values["valid_before"] = int(values["valid_before"])
    return LedgerEntry(**values)

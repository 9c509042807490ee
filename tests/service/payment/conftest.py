"""Fixtures for the payment tests: one anvil chain with the test token per session, a throwaway PostgreSQL
server when a test asks for it, and a live paid service (the real app over the real tiny model) per ledger.

Chain tests skip cleanly when the anvil binary is missing (`npm ci` installs it); PostgreSQL tests skip only
when the server binaries are missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from model.runtime.synthesizer import Synthesizer
from service.app import create_app
from service.payment.devchain.launch import DevChain
from service.settings import Settings
from tests.conftest import fresh_devchain
from tests.service.payment.support import (
    LiveService,
    PostgresServer,
    find_postgres_bin,
    live_service,
    payment_settings,
    start_postgres,
)

LEDGERS = ("sqlite", "postgresql")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def devchain() -> Iterator[DevChain]:
    with fresh_devchain() as chain:
        yield chain


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    if find_postgres_bin() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with start_postgres() as server:
        yield server


@pytest.fixture
def ledger_url_for(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A fresh, empty ledger of the given kind for one test."""

    def build(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / 'payments.sqlite3'}"
        server: PostgresServer = request.getfixturevalue("postgres")
        return server.create_database()

    return build


@pytest.fixture
def service_settings(tiny_model_dir: Path, tmp_path: Path, devchain: DevChain) -> Callable[..., Settings]:
    """Service settings over the tiny model, paid on the session chain; `payment` overrides go in a dict."""

    def build(ledger_url: str, payment: dict[str, Any] | None = None, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "model_dir": tiny_model_dir,
            "data_dir": tmp_path / "data",
            "frontend_dir": tmp_path / "no-frontend",
            "builtin_voice": False,
            "payment": payment_settings(devchain, ledger_url, **(payment or {})),
            **overrides,
        }
        return Settings(**values)

    return build


@pytest.fixture(scope="module", params=LEDGERS)
def paid_service(
    request: pytest.FixtureRequest,
    tiny_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    devchain: DevChain,
    synthesizer: Synthesizer,
) -> Iterator[LiveService]:
    """The real service, paid on the dev chain, once per module and ledger kind (SQLite, then PostgreSQL)."""
    folder = tmp_path_factory.mktemp("paid_service")
    if request.param == "sqlite":
        ledger_url = f"sqlite:///{folder / 'payments.sqlite3'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        ledger_url = server.create_database()
    settings = Settings(
        model_dir=tiny_model_dir,
        data_dir=folder / "data",
        frontend_dir=folder / "no-frontend",
        builtin_voice=False,
        payment=payment_settings(devchain, ledger_url),
    )
    with live_service(create_app(settings, synthesizers=[synthesizer])) as service:
        yield service

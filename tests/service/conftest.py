"""Fixtures for the service tests: the real app (create_app + lifespan) over the real tiny model.

`serve(**settings)` starts an app through its lifespan and yields a `Served` (app, httpx client over the ASGI
transport, the service state). The tiny model is loaded once per session and handed to each app, except in
the test that checks the lifespan loads the model itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from model.runtime.synthesizer import Synthesizer
from service.app import create_app
from service.deps import ServiceState
from service.settings import Settings
from tests.service.support import GatedSynthesizer, tone_wav


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def reference_wav() -> bytes:
    return tone_wav(1.0)


@dataclass
class Served:
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def state(self) -> ServiceState:
        service: ServiceState = self.app.state.service
        return service


ServeFactory = Callable[..., contextlib.AbstractAsyncContextManager[Served]]


@pytest.fixture
def settings_for(tmp_path: Path, tiny_model_dir: Path) -> Callable[..., Settings]:
    """Settings for a test: its own data dir, no frontend, no built-in voice unless asked."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "model_dir": tiny_model_dir,
            "data_dir": tmp_path / "data",
            "frontend_dir": tmp_path / "no-frontend",
            "builtin_voice": False,
            **overrides,
        }
        return Settings(**values)

    return build


@pytest.fixture
def serve(settings_for: Callable[..., Settings], synthesizer: Synthesizer) -> ServeFactory:
    @contextlib.asynccontextmanager
    async def start(
        *, synthesizers: Sequence[Any] | None = None, preload: bool = True, **overrides: Any
    ) -> AsyncIterator[Served]:
        chosen = synthesizers if synthesizers is not None else ([synthesizer] if preload else None)
        app = create_app(settings_for(**overrides), synthesizers=chosen)
        async with LifespanManager(app, startup_timeout=120, shutdown_timeout=30) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as client:
                yield Served(app=app, client=client)

    return start


@pytest.fixture
def gated(synthesizer: Synthesizer) -> GatedSynthesizer:
    return GatedSynthesizer(synthesizer)

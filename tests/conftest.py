"""Shared fixtures. torch is imported lazily inside fixtures so torch-free test modules never load it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Payments need a chain: tests that take payments configure them (tests/service/payment); all others run free.
os.environ.setdefault("SMALLTTS_PAYMENT__MODE", "off")

if TYPE_CHECKING:
    from model.nn.dit import DiTModel
    from model.runtime.synthesizer import Synthesizer
    from service.payment.devchain.launch import DevChain

# The training fixtures (an espeak-ng corpus, shards, short trainer runs) are shared by tests/training and the
# training commands' tests in tests/smalltts/cli; a plugin makes each session fixture run once for both.
pytest_plugins = ["tests.training.fixtures"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random `tiny` model folder (dmd/ + codec/ ONNX graphs with sidecars), exported once per session.

    Its weights equal `model.export.build_random_model("tiny", seed=0)` and its codec
    `StandinCodec(cfg.codec, seed=0)`, so tests can compare against torch.
    """
    from model.export import build_random_model_dir

    return build_random_model_dir("tiny", tmp_path_factory.mktemp("tiny_model"), seed=0)


@pytest.fixture
def tiny_model() -> DiTModel:
    """A fresh random `tiny` DiTModel in eval mode, with the same weights as `tiny_model_dir`."""
    from model.export import build_random_model

    return build_random_model("tiny", seed=0)


@pytest.fixture(scope="session")
def ddim_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model again, its sidecar saying what an exported teacher's does: sample with DDIM, 12 steps."""
    import json
    import shutil

    folder = tmp_path_factory.mktemp("ddim_model") / "model"
    shutil.copytree(tiny_model_dir, folder)
    sidecar = folder / "dmd" / "denoiser.json"
    payload = json.loads(sidecar.read_text())
    payload["model"]["schedule"] |= {"sampler": "ddim", "num_steps": 12}
    sidecar.write_text(json.dumps(payload))
    return folder


def errors_defined_in(package: str) -> set[type[BaseException]]:
    """Every exception class defined in `package`, found by importing all its modules and walking subclasses.

    The error-root tests (tests/<package>/test_errors.py) check each one derives from the package's root.
    """
    import importlib
    import pkgutil

    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        importlib.import_module(info.name)

    def subclasses(cls: type[BaseException]) -> Iterator[type[BaseException]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    return {cls for cls in subclasses(BaseException) if cls.__module__.split(".")[0] == package}


@pytest.fixture(scope="session")
def synthesizer(tiny_model_dir: Path) -> Synthesizer:
    """The tiny model loaded once by the torch-free runtime."""
    from model.runtime.synthesizer import Synthesizer

    return Synthesizer.load(tiny_model_dir)


@pytest.fixture
def fake_repo(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A folder laid out like the Hugging Face repo: dmd/ and codec/ graphs (no sidecars), plus a README and a
    file that `fetch` must leave behind."""
    import shutil

    from model.runtime.assets import REQUIRED_FILES

    repo = tmp_path / "hub_repo"
    for name in REQUIRED_FILES:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tiny_model_dir / name, repo / name)
    (repo / "README.md").write_text("smalltts\n")
    (repo / "tryme").mkdir()
    (repo / "tryme" / "latents.npy").write_bytes(b"not fetched")
    return repo


def require_anvil() -> None:
    """Skips the calling test when the anvil binary is missing (`npm ci` at the repository root installs it)."""
    from service.payment.devchain.anvil import find_anvil

    if find_anvil() is None:
        pytest.skip("anvil not installed: run `npm ci` at the repository root")


@contextmanager
def fresh_devchain() -> Iterator[DevChain]:
    """A dev chain of its own (anvil, the test token, a funded payer) for a fixture; no facts file is kept."""
    from service.payment.devchain.anvil import AnvilError
    from service.payment.devchain.launch import start_devchain

    require_anvil()
    try:
        with start_devchain(None) as chain:
            yield chain
    except AnvilError as exc:
        pytest.fail(f"anvil did not start: {exc}")


# Tests that start real servers or train models take seconds each. They carry the `slow` marker so that
# `pytest -m "not slow"` is a quick loop while editing; `make test` runs everything. Marked by what they use
# rather than by hand, so a new test over a chain, a database, a browser or a trainer is marked as well.
SLOW_FIXTURES = frozenset(
    {"devchain", "postgres", "paid_service", "paid_site", "built_frontend", "frontend_installed", "corpus_dir",
     "dataset_dir", "heldout_dir", "teacher_run", "asr_run", "sv_run"}
)  # fmt: skip
SLOW_MODULES = frozenset({"test_pay_say.py", "test_distributed.py", "test_interactive.py", "test_bench_server.py"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SLOW_FIXTURES or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)

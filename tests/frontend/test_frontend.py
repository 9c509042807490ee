"""The frontend's checks, run by `make test` through pytest: strict type-check, vitest, the production build,
the OpenAPI snapshot and generated client against the live schema, and the browser end-to-end test.

The end-to-end test drives Debian's Chromium (playwright-core, frontend/tests/e2e/paid-flow.mjs) against the
real service over the tiny random model, paid on a real anvil dev chain with our test token, serving the
freshly built page. Screenshots land in frontend/test-artifacts/ (git-ignored).

    .venv/bin/python -m pytest tests/frontend -q
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.app import create_app
from service.payment.devchain.launch import DevChain
from service.settings import Settings
from tests.conftest import fresh_devchain
from tests.service.payment.support import LiveService, live_service, payment_settings
from tests.service.support import tone_wav

REPO_ROOT = Path(__file__).resolve().parents[2]
FRONTEND = REPO_ROOT / "frontend"
ARTIFACTS = FRONTEND / "test-artifacts"
CHROMIUM = Path(os.environ.get("SMALLTTS_E2E_CHROMIUM", "/usr/bin/chromium"))


def npm(*args: str, timeout_s: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run an npm script in frontend/ and fail the test with its output when it fails."""
    completed = subprocess.run(
        ["npm", "run", "--silent", *args],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **(env or {}), "FORCE_COLOR": "0", "NO_COLOR": "1"},
        check=False,
    )
    if completed.returncode != 0:
        output = f"{completed.stdout}\n{completed.stderr}"
        pytest.fail(f"npm run {' '.join(args)} failed with status {completed.returncode}:\n{output}")
    return completed


@pytest.fixture(scope="module", autouse=True)
def frontend_installed() -> None:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node and npm are not installed")
    if not (FRONTEND / "node_modules" / ".bin" / "vite").is_file():
        pytest.fail("frontend packages are missing: run `make install` (npm ci in frontend/)")


@pytest.fixture(scope="module")
def built_frontend(frontend_installed: None) -> Path:
    """`npm run build` (tsc -b, then vite build) once per module; the e2e test serves the result."""
    npm("build")
    assert (FRONTEND / "dist" / "index.html").is_file()
    return FRONTEND / "dist"


def test_typescript_strict_typecheck_passes() -> None:
    npm("typecheck")


def test_vitest_unit_tests_pass() -> None:
    result = npm("test")
    summary = re.search(r"Tests\s+(\d+) passed", result.stdout)
    assert summary is not None and int(summary.group(1)) > 0, result.stdout
    assert "failed" not in result.stdout


def test_production_build_emits_the_page(built_frontend: Path) -> None:
    index = (built_frontend / "index.html").read_text(encoding="utf-8")
    assert "<title>smalltts" in index
    scripts = list((built_frontend / "assets").glob("index-*.js"))
    assert scripts, "vite wrote no entry script"


def test_openapi_snapshot_matches_the_live_schema() -> None:
    completed = subprocess.run(
        [sys.executable, str(FRONTEND / "scripts" / "export_openapi.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def test_generated_client_matches_the_snapshot(tmp_path: Path) -> None:
    generated = tmp_path / "schema.d.ts"
    subprocess.run(
        [str(FRONTEND / "node_modules" / ".bin" / "openapi-typescript"), "openapi.json", "-o", str(generated)],
        cwd=FRONTEND,
        capture_output=True,
        timeout=120,
        check=True,
    )
    committed = (FRONTEND / "src" / "api" / "schema.d.ts").read_text(encoding="utf-8")
    assert generated.read_text(encoding="utf-8") == committed, "src/api/schema.d.ts is stale: run `npm run openapi`"


# --- browser end to end ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def devchain() -> Iterator[DevChain]:
    with fresh_devchain() as chain:
        yield chain


@pytest.fixture(scope="module")
def paid_site(
    built_frontend: Path, devchain: DevChain, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    """The real service over the tiny model, paid on the dev chain, serving the built page at /."""
    folder = tmp_path_factory.mktemp("paid_site")
    settings = Settings(
        model_dir=tiny_model_dir,
        data_dir=folder / "data",
        frontend_dir=built_frontend,
        builtin_voice=False,
        # The page's dev wallet reads /v1/devchain, served only for an anvil the service itself started.
        payment=payment_settings(devchain, f"sqlite:///{folder / 'payments.sqlite3'}", devchain_started=True),
    )
    with live_service(create_app(settings)) as service:
        yield service


def reference_recording(folder: Path) -> Path:
    """Real speech from espeak-ng when it is installed, else a voiced test tone."""
    path = folder / "reference.wav"
    espeak = shutil.which("espeak-ng")
    if espeak is not None:
        subprocess.run(
            [espeak, "-v", "en-us", "-w", str(path), "This is the reference voice of the browser test."],
            check=True,
            capture_output=True,
            timeout=60,
        )
    else:
        path.write_bytes(tone_wav(2.0))
    return path


def test_browser_pays_with_the_dev_wallet_and_an_unfunded_wallet_is_refused(
    paid_site: LiveService, tmp_path: Path
) -> None:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found: install the Debian packages chromium and chromium-driver")
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    result = npm(
        "e2e",
        timeout_s=240,
        env={
            "SMALLTTS_E2E_URL": paid_site.url,
            "SMALLTTS_E2E_REFERENCE": str(reference_recording(tmp_path)),
            "SMALLTTS_E2E_ARTIFACTS": str(ARTIFACTS),
            "SMALLTTS_E2E_CHROMIUM": str(CHROMIUM),
        },
    )
    assert "dev wallet: paid" in result.stdout
    assert "waveform: drawn" in result.stdout
    assert "unfunded wallet: refused" in result.stdout
    assert (ARTIFACTS / "paid-flow.png").stat().st_size > 10_000
    assert (ARTIFACTS / "unfunded-wallet.png").stat().st_size > 10_000

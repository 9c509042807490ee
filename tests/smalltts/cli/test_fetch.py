"""`smalltts fetch` through the real entry point, against a local fake hub (HF_ENDPOINT) and offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from model.runtime.assets import PUBLISHED_REPO, REQUIRED_FILES, check_model_dir
from tests.model.runtime.fake_hub import FakeHub

REPO_ROOT = Path(__file__).resolve().parents[3]


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in {"HF_HUB_OFFLINE", "HF_ENDPOINT"}} | env
    return subprocess.run(
        [sys.executable, "-m", "smalltts", "fetch", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_fetch_from_the_hub_named_by_hf_endpoint(fake_repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "weights"
    with FakeHub(fake_repo, PUBLISHED_REPO) as hub:
        result = _run("--dir", str(target), "--quiet", HF_ENDPOINT=hub.endpoint)
        assert result.returncode == 0, result.stderr
        assert sorted(hub.downloads()) == sorted(REQUIRED_FILES)
    assert check_model_dir(target) == []
    assert f"complete in {target}" in result.stdout


def test_fetch_offline_fails_with_one_line(tmp_path: Path) -> None:
    result = _run("--dir", str(tmp_path / "weights"), HF_HUB_OFFLINE="1")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("smalltts: error: cannot download smallbraineng/smalltts: offline")

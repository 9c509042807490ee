"""Finding and starting anvil, without needing it: the errors when it is missing, dies or stays silent."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from service.payment.devchain.anvil import ANVIL_IN_NODE_MODULES, AnvilError, find_anvil, start_anvil


def test_a_missing_or_dying_anvil_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AnvilError, match="exited with status 1"):
        start_anvil(binary=Path("/bin/false"), log_path=tmp_path / "anvil.log", ready_timeout_s=5)
    monkeypatch.setenv("SMALLTTS_ANVIL", "")
    monkeypatch.setattr("service.payment.devchain.anvil.REPO_ROOT", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AnvilError, match="npm ci"):
        start_anvil()


def test_find_anvil_prefers_the_override_then_node_modules_then_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path = tmp_path / "bin" / "anvil"
    on_path.parent.mkdir()
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(on_path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.setenv("SMALLTTS_ANVIL", "")
    assert find_anvil(tmp_path) == on_path
    local = tmp_path / ANVIL_IN_NODE_MODULES
    local.parent.mkdir(parents=True)
    local.write_text("")
    assert find_anvil(tmp_path) == local
    monkeypatch.setenv("SMALLTTS_ANVIL", "/opt/anvil")
    assert find_anvil(tmp_path) == Path("/opt/anvil")


def test_an_anvil_that_never_answers_is_stopped_and_reported(tmp_path: Path) -> None:
    silent = tmp_path / "silent-anvil"
    silent.write_text("#!/bin/sh\nexec sleep 30\n")
    silent.chmod(silent.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(AnvilError, match="did not answer .* within 0.3 s"):
        start_anvil(binary=silent, ready_timeout_s=0.3)

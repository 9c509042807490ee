"""`smalltts run` with no model named: fetch the published weights when the hub answers, else one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.runtime.assets import PUBLISHED_REPO, check_model_dir, published_dir
from service.settings import Settings
from smalltts.cli.first_run import fetch_on_first_run
from tests.model.runtime.fake_hub import FakeHub


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("SMALLTTS_MODEL_DIR", raising=False)


def test_first_run_fetches_the_published_weights_when_the_hub_answers(
    fake_repo: Path, tmp_path: Path, online: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeHub(fake_repo, PUBLISHED_REPO) as hub:
        fetched = fetch_on_first_run(Settings(), models_dir=tmp_path, endpoint=hub.endpoint, progress=False)
        assert fetched == published_dir(models_dir=tmp_path) and check_model_dir(fetched) == []
        assert "first run: fetching the published weights" in capsys.readouterr().out
        # the second run finds them and asks nothing
        before = len(hub.requests)
        assert fetch_on_first_run(Settings(), models_dir=tmp_path, endpoint=hub.endpoint) is None
        assert len(hub.requests) == before and capsys.readouterr().out == ""


def test_offline_it_says_in_one_line_that_it_serves_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SMALLTTS_MODEL_DIR", raising=False)
    assert fetch_on_first_run(Settings(), models_dir=tmp_path) is None
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("smalltts: serving the bundled demo model: cannot download") and "offline" in lines[-1]


def test_auto_fetch_off_or_a_named_model_never_downloads(
    tiny_model_dir: Path, tmp_path: Path, online: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("SMALLTTS_AUTO_FETCH", "0")
    unreachable = "http://127.0.0.1:9"  # nothing may be asked: a request here would fail the call
    assert fetch_on_first_run(Settings(), models_dir=tmp_path, endpoint=unreachable) is None
    assert "SMALLTTS_AUTO_FETCH=0" in capsys.readouterr().out
    monkeypatch.delenv("SMALLTTS_AUTO_FETCH")
    assert fetch_on_first_run(Settings(model_dir=tiny_model_dir), models_dir=tmp_path, endpoint=unreachable) is None
    assert capsys.readouterr().out == ""

"""Model folder checks, default model resolution and the real download code against a local fake hub."""

from __future__ import annotations

import shutil
import socket
import sys
import types
from pathlib import Path

import pytest

from model.runtime import assets
from model.runtime.assets import (
    PUBLISHED_REPO,
    REQUIRED_FILES,
    FetchError,
    ModelNotFoundError,
    check_model_dir,
    fetch_assets,
    require_model_dir,
    resolve_model_dir,
)
from tests.model.runtime.fake_hub import FakeHub


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)


def test_check_model_dir_names_every_problem(fake_repo: Path) -> None:
    assert check_model_dir(fake_repo) == []
    (fake_repo / "codec" / "encoder.onnx").unlink()
    denoiser = fake_repo / "dmd" / "denoiser.onnx"
    denoiser.write_bytes(denoiser.read_bytes()[:5000])
    assert check_model_dir(fake_repo) == [
        "dmd/denoiser.onnx: incomplete or not an ONNX file",
        "codec/encoder.onnx: missing",
    ]
    with pytest.raises(ModelNotFoundError, match=r"dmd/denoiser.onnx: incomplete.*codec/encoder.onnx: missing"):
        require_model_dir(fake_repo)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        require_model_dir(fake_repo / "nowhere")


def test_external_data_files_are_checked(fake_repo: Path) -> None:
    onnx = pytest.importorskip("onnx")
    path = fake_repo / "dmd" / "denoiser.onnx"
    model = onnx.load(path)
    onnx.save(model, path, save_as_external_data=True, location="denoiser.onnx.data", size_threshold=1024)
    assert check_model_dir(fake_repo) == []
    data = fake_repo / "dmd" / "denoiser.onnx.data"
    data.write_bytes(data.read_bytes()[:-10])
    [problem] = check_model_dir(fake_repo)
    assert problem.startswith("dmd/denoiser.onnx.data: incomplete")
    data.unlink()
    assert check_model_dir(fake_repo) == ["dmd/denoiser.onnx.data: missing"]


def test_resolve_prefers_explicit_then_env_then_published_then_demo(
    fake_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    demo = tmp_path / "demo"
    monkeypatch.delenv(assets.MODEL_DIR_ENV, raising=False)
    shutil.copytree(fake_repo, demo)
    assert resolve_model_dir(models_dir=models, demo=demo, allow_random=False) == demo
    published = models / "smallbraineng--smalltts"
    shutil.copytree(fake_repo, published)
    assert resolve_model_dir(models_dir=models, demo=demo, allow_random=False) == published
    monkeypatch.setenv(assets.MODEL_DIR_ENV, str(demo))
    assert resolve_model_dir(models_dir=models, allow_random=False) == demo
    assert resolve_model_dir(fake_repo, models_dir=models) == fake_repo
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model_dir(tmp_path / "typo", models_dir=models)


def test_an_incomplete_published_folder_is_skipped(
    fake_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(assets.MODEL_DIR_ENV, raising=False)
    models = tmp_path / "models"
    shutil.copytree(fake_repo, models / "smallbraineng--smalltts")
    (models / "smallbraineng--smalltts" / "codec" / "decoder.onnx").unlink()
    with pytest.raises(ModelNotFoundError, match="smalltts fetch"):
        resolve_model_dir(models_dir=models, demo=tmp_path / "no-demo", allow_random=False)


def test_without_any_model_a_random_one_is_exported_once(
    fake_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(assets.MODEL_DIR_ENV, raising=False)
    calls: list[str] = []

    def build_random_model_dir(preset: str, out_dir: Path, *, seed: int = 0) -> Path:  # FakeExport
        calls.append(preset)
        shutil.copytree(fake_repo, out_dir)
        return Path(out_dir)

    monkeypatch.setitem(
        sys.modules, "model.export", types.SimpleNamespace(build_random_model_dir=build_random_model_dir)
    )
    models = tmp_path / "models"
    first = resolve_model_dir(models_dir=models, demo=tmp_path / "no-demo")
    second = resolve_model_dir(models_dir=models, demo=tmp_path / "no-demo")
    assert first == second == models / "random-tiny"
    assert calls == ["tiny"]
    assert check_model_dir(first) == []
    assert sorted(p.name for p in models.iterdir()) == ["random-tiny"]  # no staging folder left behind


def test_without_torch_the_random_model_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(assets.MODEL_DIR_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "model.export", None)  # import fails as if torch were missing
    with pytest.raises(ModelNotFoundError, match="needs torch") as info:
        resolve_model_dir(models_dir=tmp_path / "models", demo=tmp_path / "no-demo")
    assert "\n" not in str(info.value)


def test_fetch_downloads_dmd_and_codec_only(fake_repo: Path, tmp_path: Path, online: None) -> None:
    target = tmp_path / "weights"
    with FakeHub(fake_repo, PUBLISHED_REPO) as hub:
        assert fetch_assets(local_dir=target, endpoint=hub.endpoint, progress=False) == target
        assert sorted(hub.downloads()) == sorted(REQUIRED_FILES)
        assert check_model_dir(target) == []
        for name in REQUIRED_FILES:
            assert (target / name).read_bytes() == (fake_repo / name).read_bytes()
        assert not (target / "README.md").exists() and not (target / "tryme").exists()
        # A second run checks every file and downloads nothing.
        fetch_assets(local_dir=target, endpoint=hub.endpoint, progress=False)
        assert len(hub.downloads()) == len(REQUIRED_FILES)


def test_fetch_repairs_missing_truncated_and_altered_files(fake_repo: Path, tmp_path: Path, online: None) -> None:
    target = tmp_path / "weights"
    with FakeHub(fake_repo, PUBLISHED_REPO) as hub:
        fetch_assets(local_dir=target, endpoint=hub.endpoint, progress=False)
        (target / "codec" / "encoder.onnx").unlink()
        denoiser = target / "dmd" / "denoiser.onnx"
        denoiser.write_bytes(denoiser.read_bytes()[:1000])
        decoder = target / "codec" / "decoder.onnx"
        altered = bytearray(decoder.read_bytes())
        altered[-1] ^= 0xFF  # same size, different bytes: only the hash can tell
        decoder.write_bytes(bytes(altered))
        hub.requests.clear()
        fetch_assets(local_dir=target, endpoint=hub.endpoint, progress=False)
        assert sorted(hub.downloads()) == ["codec/decoder.onnx", "codec/encoder.onnx", "dmd/denoiser.onnx"]
    for name in REQUIRED_FILES:
        assert (target / name).read_bytes() == (fake_repo / name).read_bytes()


def test_a_dropped_connection_resumes_where_it_stopped(
    fake_repo: Path, tmp_path: Path, online: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    # Small chunks so that the bytes received before the drop reach the partial file.
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    target = tmp_path / "weights"
    with FakeHub(fake_repo, PUBLISHED_REPO) as hub:
        hub.fail_next("dmd/denoiser.onnx", 100_000)  # first GET: 100 kB, then the connection drops
        fetch_assets(local_dir=target, endpoint=hub.endpoint, progress=False)
        [(name, start)] = hub.range_starts
        assert name == "dmd/denoiser.onnx" and 0 < start <= 100_000
    assert (target / "dmd" / "denoiser.onnx").read_bytes() == (fake_repo / "dmd" / "denoiser.onnx").read_bytes()


def test_a_failed_download_is_one_line_and_the_next_run_completes(
    fake_repo: Path, tmp_path: Path, online: None
) -> None:
    target = tmp_path / "weights"
    with FakeHub(fake_repo, PUBLISHED_REPO) as hub:
        hub.fail_next("codec/decoder.onnx", -1)  # 503, which huggingface_hub does not retry
        with pytest.raises(FetchError, match="503") as info:
            fetch_assets(local_dir=target, endpoint=hub.endpoint, progress=False)
        assert "\n" not in str(info.value)
        fetch_assets(local_dir=target, endpoint=hub.endpoint, progress=False)
    assert check_model_dir(target) == []


def test_an_unknown_repo_is_a_fetch_error(fake_repo: Path, tmp_path: Path, online: None) -> None:
    with FakeHub(fake_repo, PUBLISHED_REPO) as hub, pytest.raises(FetchError, match="someone/else") as info:
        fetch_assets("someone/else", tmp_path / "weights", endpoint=hub.endpoint, progress=False)
    assert "\n" not in str(info.value)


def test_a_repo_without_the_graphs_is_reported(fake_repo: Path, tmp_path: Path, online: None) -> None:
    (fake_repo / "dmd" / "denoiser.onnx").unlink()
    with FakeHub(fake_repo, PUBLISHED_REPO) as hub, pytest.raises(FetchError, match="dmd/denoiser.onnx: missing"):
        fetch_assets(local_dir=tmp_path / "weights", endpoint=hub.endpoint, progress=False)


def test_offline_fails_at_once_without_touching_the_network(
    fake_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with FakeHub(fake_repo, PUBLISHED_REPO) as hub:
        with pytest.raises(FetchError, match="offline") as info:
            fetch_assets(local_dir=tmp_path / "weights", endpoint=hub.endpoint, progress=False)
        assert "\n" not in str(info.value) and "dmd/condition_encoder.onnx: missing" in str(info.value)
        assert hub.requests == []
        # A complete folder is fine offline.
        assert fetch_assets(local_dir=fake_repo, endpoint=hub.endpoint, progress=False) == fake_repo
        assert hub.requests == []


def test_an_unreachable_hub_fails_with_one_line(tmp_path: Path, online: None) -> None:
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError, match="unreachable") as info:
        fetch_assets(local_dir=tmp_path / "weights", endpoint=f"http://127.0.0.1:{port}", progress=False)
    assert "\n" not in str(info.value)

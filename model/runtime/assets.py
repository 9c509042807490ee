"""Where model files live: the published layout, completeness checks, the default model and the download.

    AssetError
    ├── ModelNotFoundError   a model folder is missing files (named one by one)
    └── FetchError           downloading failed (offline, unknown repo, incomplete repo)

The published repo `smallbraineng/smalltts` holds `dmd/{condition_encoder,denoiser}.onnx` and
`codec/{encoder,decoder}.onnx` at its root (spec §1.2). A folder counts as complete only when every one of
those files is a whole ONNX file and every external-data file it points to is there and long enough; the
original checked only that the folder existed, so a broken download was never repaired (spec §8, bug 17).

The serving path never downloads: `resolve_model_dir` only looks. `fetch_assets` is the one download, run by
`smalltts fetch`.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import shutil
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tqdm.auto import tqdm

from model.errors import ModelError
from model.runtime.graph import OnnxFileError, inspect_onnx_file

logger = logging.getLogger(__name__)

PUBLISHED_REPO = "smallbraineng/smalltts"
PUBLISHED_FOLDERS: tuple[str, ...] = ("dmd", "codec")
CONDITION_ENCODER = "dmd/condition_encoder.onnx"
DENOISER = "dmd/denoiser.onnx"
CODEC_ENCODER = "codec/encoder.onnx"
CODEC_DECODER = "codec/decoder.onnx"
REQUIRED_FILES: tuple[str, ...] = (CONDITION_ENCODER, DENOISER, CODEC_ENCODER, CODEC_DECODER)
MODEL_DIR_ENV = "SMALLTTS_MODEL_DIR"
RANDOM_PRESET = "tiny"


class AssetError(ModelError):
    """Model files are missing or could not be downloaded; the message is one line for the user."""


class ModelNotFoundError(AssetError):
    pass


class FetchError(AssetError):
    pass


# --- locations ------------------------------------------------------------------------------------------


def repo_root() -> Path:
    """The source checkout this package runs from (model/runtime/assets.py -> repo root)."""
    return Path(__file__).resolve().parents[2]


def default_models_dir() -> Path:
    """`.smalltts/models` under a writable source checkout, else the user cache (~/.cache/smalltts/models)."""
    root = repo_root()
    if (root / "pyproject.toml").is_file() and os.access(root, os.W_OK):
        return root / ".smalltts" / "models"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "smalltts" / "models"


def published_dir(repo: str = PUBLISHED_REPO, models_dir: Path | None = None) -> Path:
    """Where `smalltts fetch` puts a repo by default: <models dir>/<owner>--<name>."""
    return (models_dir or default_models_dir()) / repo.replace("/", "--")


def demo_dir() -> Path:
    """The bundled demo model (trained by a later issue); absent until then."""
    return repo_root() / "model" / "demo"


def random_model_dir(preset: str = RANDOM_PRESET, models_dir: Path | None = None) -> Path:
    return (models_dir or default_models_dir()) / f"random-{preset}"


# --- checks ---------------------------------------------------------------------------------------------


def check_model_dir(model_dir: str | Path) -> list[str]:
    """Problems of a model folder, one per file ("dmd/denoiser.onnx: missing"); empty when it is complete."""
    model_dir = Path(model_dir)
    problems: list[str] = []
    for name in REQUIRED_FILES:
        path = model_dir / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        try:
            info = inspect_onnx_file(path)
        except OnnxFileError:
            problems.append(f"{name}: incomplete or not an ONNX file")
            continue
        for data_name, needed_bytes in sorted(info.external_data.items()):
            data_path = path.parent / data_name
            relative = f"{Path(name).parent.as_posix()}/{data_name}"
            if not data_path.is_file():
                problems.append(f"{relative}: missing")
            elif data_path.stat().st_size < needed_bytes:
                problems.append(f"{relative}: incomplete ({data_path.stat().st_size} of {needed_bytes} bytes)")
    return problems


def is_complete(model_dir: str | Path) -> bool:
    return Path(model_dir).is_dir() and not check_model_dir(model_dir)


def require_model_dir(model_dir: str | Path) -> Path:
    """Returns the folder if complete; raises ModelNotFoundError naming every missing or broken file."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelNotFoundError(f"model folder {model_dir} does not exist")
    problems = check_model_dir(model_dir)
    if problems:
        raise ModelNotFoundError(f"model folder {model_dir} is incomplete: {'; '.join(problems)}")
    return model_dir


# --- the default model ----------------------------------------------------------------------------------


def resolve_model_dir(
    explicit: str | Path | None = None,
    *,
    models_dir: Path | None = None,
    demo: Path | None = None,
    allow_random: bool = True,
) -> Path:
    """The model folder to use, in this order:

    1. `explicit` (the --model flag), then $SMALLTTS_MODEL_DIR: must be complete, else ModelNotFoundError;
    2. the published weights, if `smalltts fetch` put them in the default place;
    3. the bundled demo model (model/demo/);
    4. a tiny random-weight model, exported on first use (needs torch), when allow_random.
    """
    chosen = explicit if explicit is not None else os.environ.get(MODEL_DIR_ENV) or None
    if chosen is not None:
        return require_model_dir(chosen)
    for candidate in (published_dir(models_dir=models_dir), demo if demo is not None else demo_dir()):
        if is_complete(candidate):
            return candidate
    if not allow_random:
        raise ModelNotFoundError(
            f"no model found: pass --model DIR, set {MODEL_DIR_ENV}, or run `smalltts fetch` "
            f"(looked in {published_dir(models_dir=models_dir)})"
        )
    return ensure_random_model(RANDOM_PRESET, models_dir=models_dir)


def ensure_random_model(preset: str = RANDOM_PRESET, *, models_dir: Path | None = None, seed: int = 0) -> Path:
    """The random-weight model of a preset, exported on first use into <models dir>/random-<preset>."""
    target = random_model_dir(preset, models_dir)
    if is_complete(target):
        return target
    try:
        export = importlib.import_module("model.export")
    except ImportError as exc:
        raise ModelNotFoundError(
            "no model found: pass --model DIR or run `smalltts fetch`; building the random test model needs "
            f"torch, which is not installed ({exc.name or exc})"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    # Export into a private folder and rename it into place, so a half-written export is never picked up and
    # two processes exporting at once do not mix their files.
    staging = target.parent / f".{target.name}.{os.getpid()}.{threading.get_ident()}"
    shutil.rmtree(staging, ignore_errors=True)
    logger.warning("exporting the random %s model into %s (first use only)", preset, target)
    try:
        export.build_random_model_dir(preset, staging, seed=seed)
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            staging.rename(target)
        except OSError:
            if not is_complete(target):  # someone else's export won the race only if theirs is complete
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return require_model_dir(target)


# --- download -------------------------------------------------------------------------------------------


def _is_offline() -> bool:
    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return flag.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _uses_proxy() -> bool:
    return any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"))


def _endpoint_reachable(endpoint: str, timeout_s: float) -> str | None:
    """None when a TCP connection to the endpoint opens within timeout_s, else the reason it did not.

    Name resolution ignores socket timeouts (and retries for ~20 s on some networks), so the attempt runs in
    a daemon thread that is abandoned after timeout_s.
    """
    parsed = urlparse(endpoint)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                outcome.append(None)
        except OSError as exc:
            outcome.append(str(exc) or type(exc).__name__)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not outcome:
        return f"no answer within {timeout_s:g} s"
    return outcome[0]


def _download_errors() -> tuple[type[BaseException], ...]:
    """What huggingface_hub may raise for network and repo problems (its HTTP client varies by version)."""
    errors: list[type[BaseException]] = [OSError, ValueError]
    for module_name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        base = getattr(module, "HTTPError", None)
        if isinstance(base, type) and issubclass(base, BaseException):
            errors.append(base)
    return tuple(errors)


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def fetch_assets(
    repo: str = PUBLISHED_REPO,
    local_dir: str | Path | None = None,
    *,
    endpoint: str | None = None,
    progress: bool = True,
    connect_timeout_s: float = 1.5,
    folders: Sequence[str] = PUBLISHED_FOLDERS,
) -> Path:
    """Downloads dmd/ and codec/ of a Hugging Face repo into local_dir and checks every file.

    Files already complete are kept; missing, truncated or altered ones (checked against the repo's sizes and
    LFS SHA-256s) are downloaded again, and a connection dropped mid-file resumes from the bytes received
    (huggingface_hub retries with an HTTP Range). Offline, or with the hub unreachable, it fails at once unless
    local_dir is already complete. Raises FetchError with a one-line message.
    """
    from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
    from huggingface_hub.hf_api import RepoFile

    target = Path(local_dir) if local_dir is not None else published_dir(repo)
    problems = check_model_dir(target)
    if _is_offline():
        if not problems:
            return target
        raise FetchError(
            f"cannot download {repo}: offline (HF_HUB_OFFLINE is set) and {target} is incomplete "
            f"({'; '.join(problems)})"
        )
    endpoint_url = endpoint or constants.ENDPOINT
    # Behind a proxy a direct connection proves nothing; huggingface_hub goes through the proxy itself.
    unreachable = None if _uses_proxy() else _endpoint_reachable(endpoint_url, connect_timeout_s)
    if unreachable is not None:
        if not problems:
            logger.warning(
                "cannot reach %s (%s); keeping the complete folder %s unverified", endpoint_url, unreachable, target
            )
            return target
        raise FetchError(f"cannot download {repo}: {endpoint_url} is unreachable ({unreachable}); are you offline?")

    patterns = [f"{folder}/*" for folder in folders]
    tqdm_class: Any = None if progress else _SilentTqdm
    try:
        snapshot_download(
            repo_id=repo,
            repo_type="model",
            local_dir=target,
            allow_patterns=patterns,
            endpoint=endpoint,
            tqdm_class=tqdm_class,
            max_workers=max(1, min(8, os.cpu_count() or 1)),
        )
        api = HfApi(endpoint=endpoint)
        expected = {
            entry.path: (entry.size, entry.lfs.sha256 if entry.lfs is not None else None)
            for entry in api.list_repo_tree(repo, recursive=True, repo_type="model")
            if isinstance(entry, RepoFile) and entry.path.split("/", 1)[0] in folders
        }
        for name, (size, sha256) in expected.items():
            if not _matches(target / name, size, sha256):
                # local_dir metadata can call a file current while its bytes are not (a copy cut short, a disk
                # error); the repo's size and hash are the judge, and a forced download replaces the file.
                hf_hub_download(repo, name, repo_type="model", local_dir=target, endpoint=endpoint, force_download=True)
    except _download_errors() as exc:
        raise FetchError(f"cannot download {repo}: {_one_line(exc)}") from None
    problems = [
        f"{name}: differs from the repo"
        for name, (size, sha256) in expected.items()
        if not _matches(target / name, size, sha256)
    ]
    problems += check_model_dir(target)
    if problems:
        raise FetchError(f"download of {repo} into {target} is incomplete: {'; '.join(problems)}")
    return target


def _matches(path: Path, size: int, sha256: str | None) -> bool:
    """The file has the repo's size and, for LFS files (the graphs), the repo's SHA-256."""
    if not path.is_file() or path.stat().st_size != size:
        return False
    if sha256 is None:
        return True
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == sha256


class _SilentTqdm(tqdm):  # type: ignore[misc]
    """A progress bar that never draws (tests, --quiet)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("name", None)
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)

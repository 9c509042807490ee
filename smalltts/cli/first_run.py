"""What `smalltts run` serves when no model is named: the published weights, fetched on first use if the hub
answers, else the bundled demo, with one line saying which and why.

Only `run` (what `make run` calls) fetches: `serve` in a container or a cluster must start the same way every
time, so it never downloads behind the operator's back (`smalltts fetch` or an init container does that).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from model.runtime.assets import (
    MODEL_DIR_ENV,
    PUBLISHED_REPO,
    AssetError,
    demo_dir,
    fetch_assets,
    is_complete,
    published_dir,
)
from service.settings import Settings


def fetch_on_first_run(
    settings: Settings, *, models_dir: Path | None = None, endpoint: str | None = None, progress: bool = True
) -> Path | None:
    """Downloads the published weights when nothing else was chosen and they are not on disk yet.

    Returns the folder it completed, or None when it did not fetch: a model was named, the weights are already
    there, auto-fetch is off, or the download failed (then one line says the demo is served, and why).
    """
    if settings.model_dir is not None or os.environ.get(MODEL_DIR_ENV):
        return None
    target = published_dir(models_dir=models_dir)
    if is_complete(target):
        return None
    fallback = "the bundled demo model" if is_complete(demo_dir()) else "a random tiny model"
    if not settings.auto_fetch:
        _say(f"serving {fallback}: SMALLTTS_AUTO_FETCH=0 (`smalltts fetch` downloads the published weights)")
        return None
    _say(f"first run: fetching the published weights ({PUBLISHED_REPO}) into {target}")
    try:
        return fetch_assets(PUBLISHED_REPO, target, endpoint=endpoint, progress=progress)
    except AssetError as exc:
        _say(f"serving {fallback}: {exc}")
        return None


def _say(line: str) -> None:
    sys.stdout.write(f"smalltts: {line}\n")
    sys.stdout.flush()

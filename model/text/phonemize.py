"""espeak-ng phonemes for English text, in-process, with the settings the published weights were trained on.

Settings (spec model.md §2.2): phonemizer's espeak backend, language en-us, with_stress=True,
preserve_punctuation=True, words_mismatch="ignore", everything else default (language switches keep their
flags, no tie, phones unseparated, words separated by a space). The text is normalised first
(`normalize_text`), and espeak's output is re-tokenized with `\\w+|[^\\w\\s]` and joined by single spaces, so
punctuation becomes its own token ("həlˈoʊ wˈɜːld !") while ˈ ˌ ː stay inside their word.

The espeak library has process-wide state and is not thread-safe, so one backend is loaded lazily, once, and
every call goes through a lock. Phonemizer's messages go to the logger "model.text.phonemize.espeak", set to
ERROR; the root logger is left alone (the original set it to CRITICAL).

Which espeak-ng library is used (first match wins):
    1. PHONEMIZER_ESPEAK_LIBRARY, if the user set it (with ESPEAK_DATA_PATH or PHONEMIZER_ESPEAK_DATA_PATH);
    2. the system library (Debian: `apt-get install espeak-ng libespeak-ng1`);
    3. the library and data bundled in the `espeakng-loader` wheel: PHONEMIZER_ESPEAK_LIBRARY and
       ESPEAK_DATA_PATH are then set in this process's environment (only if unset), so worker processes
       it starts find the same library.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from model.text.normalize import load_number_words, normalize_text

if TYPE_CHECKING:
    from phonemizer.backend import EspeakBackend

LANGUAGE = "en-us"
LIBRARY_ENV = "PHONEMIZER_ESPEAK_LIBRARY"
DATA_PATH_ENV = "ESPEAK_DATA_PATH"
_PHONEMIZER_DATA_PATH_ENV = "PHONEMIZER_ESPEAK_DATA_PATH"

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")

_logger = logging.getLogger(__name__ + ".espeak")
_logger.setLevel(logging.ERROR)  # phonemizer warns about word-count mismatches we ignore by design


def find_system_espeak_library() -> str | None:
    return ctypes.util.find_library("espeak-ng") or ctypes.util.find_library("espeak")


def _loader_paths() -> tuple[str, str] | None:
    try:
        import espeakng_loader
    except ImportError:
        return None
    return str(espeakng_loader.get_library_path()), str(espeakng_loader.get_data_path())


def espeak_environment(
    environ: Mapping[str, str],
    find_system_library: Callable[[], str | None] = find_system_espeak_library,
    loader_paths: Callable[[], tuple[str, str] | None] = _loader_paths,
) -> dict[str, str]:
    """The environment variables to add so that phonemizer finds an espeak-ng library (see module docstring).

    Raises:
        RuntimeError: no system library and no espeakng-loader wheel.
    """
    has_data_path = DATA_PATH_ENV in environ or _PHONEMIZER_DATA_PATH_ENV in environ
    if LIBRARY_ENV in environ:
        # The user's choice; if it is the wheel's library, its data folder is the only one that fits.
        loader = loader_paths() if not has_data_path else None
        if loader is not None and Path(environ[LIBRARY_ENV]).resolve() == Path(loader[0]).resolve():
            return {DATA_PATH_ENV: loader[1]}
        return {}
    if find_system_library() is not None:
        return {}
    loader = loader_paths()
    if loader is None:
        raise RuntimeError(
            "no espeak-ng library found: install it (Debian: apt-get install espeak-ng libespeak-ng1) "
            f"or the espeakng-loader wheel, or set {LIBRARY_ENV} to the path of libespeak-ng"
        )
    library_path, data_path = loader
    return {LIBRARY_ENV: library_path} | ({} if has_data_path else {DATA_PATH_ENV: data_path})


class Phonemizer:
    """Text -> space-separated espeak-ng phoneme tokens; one instance can be shared by many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._backend: EspeakBackend | None = None

    def _loaded_backend(self) -> EspeakBackend:
        """Called with the lock held."""
        if self._backend is None:
            for name, value in espeak_environment(os.environ).items():
                os.environ.setdefault(name, value)
            # Imported here: phonemizer pulls in a lot, and importing this module should stay cheap.
            from phonemizer.backend import EspeakBackend

            self._backend = EspeakBackend(
                LANGUAGE,
                preserve_punctuation=True,
                with_stress=True,
                words_mismatch="ignore",
                logger=_logger,
            )
        return self._backend

    def load(self) -> None:
        """Load espeak-ng and the number speller now instead of on the first call (e.g. at service start-up)."""
        load_number_words()
        with self._lock:
            self._loaded_backend()

    @property
    def espeak_version(self) -> str:
        with self._lock:
            return ".".join(str(part) for part in self._loaded_backend().version())

    def phonemize(self, text: str) -> str:
        """Normalize `text`, run espeak-ng, and return its tokens joined by single spaces (spec §2.2)."""
        normalized = normalize_text(text)
        if not normalized:
            return ""
        with self._lock:
            raw = self._loaded_backend().phonemize([normalized])[0]
        return " ".join(_TOKEN_RE.findall(raw))


_instance: Phonemizer | None = None
_instance_lock = threading.Lock()


def get_phonemizer() -> Phonemizer:
    """The process-wide Phonemizer (espeak-ng is loaded on its first use)."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = Phonemizer()
        return _instance

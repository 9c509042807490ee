from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import espeakng_loader
import pytest

from model.text import phonemize as phonemize_module
from model.text.phonemize import DATA_PATH_ENV, LIBRARY_ENV, Phonemizer, espeak_environment, get_phonemizer

REPO_ROOT = Path(__file__).resolve().parents[3]
LOADER_LIBRARY = "/wheel/libespeak-ng.so"
LOADER_DATA = "/wheel/espeak-ng-data"


def _loader() -> tuple[str, str]:
    return LOADER_LIBRARY, LOADER_DATA


# --- real espeak-ng ----------------------------------------------------------------------------------------


def test_hello_world_has_stress_marks_and_a_separate_exclamation_token() -> None:
    assert get_phonemizer().phonemize("Hello world!") == "həlˈoʊ wˈɜːld !"


def test_ascii_colon_and_ipa_length_mark_stay_distinct() -> None:
    phonemes = get_phonemizer().phonemize("Meet me at 3:30.")
    tokens = phonemes.split(" ")
    assert ":" in tokens  # the ASCII colon is its own token
    assert any("ː" in token and token != "ː" for token in tokens)  # the length mark stays inside a word
    assert tokens[-1] == "."


def test_dollar_amount_is_read_in_spoken_order_after_normalizing() -> None:
    phonemes = get_phonemizer().phonemize("It costs $5.50 today")
    assert "fˈaɪv dˈɑːlɚz , fˈɪfti sˈɛnts" in phonemes
    # espeak alone reads "$1,250" as "dollar one thousand ..."; normalized, the amount comes first.
    phonemes = get_phonemizer().phonemize("Dr. Smith paid $1,250.")
    assert phonemes == "dˈɑːktɚ . smˈɪθ pˈeɪd twˈɛlv fˈɪfti dˈɑːlɚz ."


def test_punctuation_is_kept_as_separate_tokens() -> None:
    assert get_phonemizer().phonemize("ok; fine: yes — no…") == "ˌoʊkˈeɪ ; fˈaɪn : jˈɛs — nˈoʊ …"


def test_whitespace_only_and_unreadable_text_give_no_phonemes() -> None:
    assert get_phonemizer().phonemize("  \n ") == ""
    assert get_phonemizer().phonemize("-") == ""


def test_get_phonemizer_returns_one_process_wide_instance() -> None:
    assert get_phonemizer() is get_phonemizer()


def test_espeak_version_is_reported() -> None:
    assert get_phonemizer().espeak_version.startswith("1.")


def test_root_logger_level_is_left_alone() -> None:
    root_level = logging.getLogger().level
    Phonemizer().phonemize("Twenty-three words, give or take.")
    assert logging.getLogger().level == root_level


def test_concurrent_calls_match_sequential_results() -> None:
    phonemizer = Phonemizer()
    texts = [f"Sentence number {index}: the {index}th try costs ${index}.25, right?" for index in range(20)]
    expected = [phonemizer.phonemize(text) for text in texts]
    results: dict[int, list[str]] = {}

    def work(worker: int) -> None:
        results[worker] = [phonemizer.phonemize(text) for text in texts]

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert all(result == expected for result in results.values())


def test_backend_is_loaded_once_even_when_first_calls_race(monkeypatch: pytest.MonkeyPatch) -> None:
    import phonemizer.backend

    created: list[int] = []
    real_backend = phonemizer.backend.EspeakBackend

    def counting_backend(*args: Any, **kwargs: Any) -> Any:
        created.append(1)
        return real_backend(*args, **kwargs)

    monkeypatch.setattr(phonemizer.backend, "EspeakBackend", counting_backend)
    shared = Phonemizer()
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        shared.phonemize("hello there")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(created) == 1


def test_falls_back_to_the_espeakng_loader_wheel_without_a_system_library() -> None:
    # A fresh interpreter, because the library choice is made once per process.
    script = (
        "import ctypes.util\n"
        "ctypes.util.find_library = lambda name: None\n"
        "import os\n"
        "from model.text.phonemize import Phonemizer\n"
        "p = Phonemizer()\n"
        "print(p.phonemize('Hello world!'))\n"
        "print(p.espeak_version)\n"
        "print(os.environ['PHONEMIZER_ESPEAK_LIBRARY'])\n"
    )
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in (LIBRARY_ENV, DATA_PATH_ENV, "PHONEMIZER_ESPEAK_DATA_PATH")
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=environ, capture_output=True, text=True, check=True
    )
    phonemes, version, library = result.stdout.splitlines()
    assert phonemes == "həlˈoʊ wˈɜːld !"
    assert Path(library).resolve() == Path(espeakng_loader.get_library_path()).resolve()
    assert version.startswith("1.52")  # the wheel bundles 1.52; Debian's is 1.51


# --- library choice (unit) ---------------------------------------------------------------------------------


def test_system_library_needs_no_environment() -> None:
    assert espeak_environment({}, lambda: "libespeak-ng.so.1", _loader) == {}


def test_wheel_is_used_when_no_system_library_exists() -> None:
    assert espeak_environment({}, lambda: None, _loader) == {LIBRARY_ENV: LOADER_LIBRARY, DATA_PATH_ENV: LOADER_DATA}


@pytest.mark.parametrize("data_env", [DATA_PATH_ENV, "PHONEMIZER_ESPEAK_DATA_PATH"])
def test_wheel_fallback_keeps_a_data_path_the_user_set(data_env: str) -> None:
    assert espeak_environment({data_env: "/mine"}, lambda: None, _loader) == {LIBRARY_ENV: LOADER_LIBRARY}


def test_library_the_user_set_wins_over_the_system_one() -> None:
    def no_lookup() -> str | None:
        raise AssertionError("the system library must not be searched")

    assert espeak_environment({LIBRARY_ENV: "/opt/libespeak-ng.so"}, no_lookup, _loader) == {}


def test_user_set_wheel_library_gets_the_wheels_data(tmp_path: Path) -> None:
    library = tmp_path / "libespeak-ng.so"
    library.touch()

    def loader() -> tuple[str, str]:
        return str(library), str(tmp_path / "espeak-ng-data")

    assert espeak_environment({LIBRARY_ENV: str(library)}, lambda: None, loader) == {
        DATA_PATH_ENV: str(tmp_path / "espeak-ng-data")
    }


def test_no_library_anywhere_says_how_to_install_one() -> None:
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
        espeak_environment({}, lambda: None, lambda: None)


def test_module_logger_is_quiet_and_not_the_root_logger() -> None:
    logger = logging.getLogger(phonemize_module.__name__ + ".espeak")
    assert logger.level == logging.ERROR
    assert logger is not logging.getLogger()

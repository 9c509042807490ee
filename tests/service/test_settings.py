"""Settings: SMALLTTS_ prefix, nested groups with __, range checks, cached get_settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings, get_settings


def test_environment_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMALLTTS_MAX_BATCH_SIZE", "16")
    monkeypatch.setenv("SMALLTTS_MAX_WAIT_MS", "2.5")
    monkeypatch.setenv("SMALLTTS_STRICT_TAGS", "true")
    monkeypatch.setenv("SMALLTTS_DATA_DIR", "/srv/voices")
    monkeypatch.setenv("MAX_BATCH_SIZE", "99")  # no prefix: ignored
    settings = Settings()
    assert settings.max_batch_size == 16
    assert settings.max_wait_ms == 2.5
    assert settings.strict_tags is True
    assert settings.data_dir == Path("/srv/voices")


def test_nested_groups_use_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMALLTTS_PAYMENT__MODE", "off")
    assert Settings().payment.mode == "off"


def test_defaults_match_the_original_limits() -> None:
    settings = Settings()
    assert settings.max_upload_bytes == 2 * 1024 * 1024  # the original's body limit
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.max_body_bytes > settings.max_upload_bytes  # room for the text and the boundaries


@pytest.mark.parametrize(
    "values",
    [
        {"max_batch_size": 0},
        {"max_queue_size": 0},
        {"request_timeout_s": 0},
        {"min_duration_s": 10, "max_duration_s": 5},
        {"min_reference_s": 10, "max_reference_s": 5},
        {"default_steps": 9, "max_steps": 8},
        {"port": 70000},
    ],
)
def test_nonsense_is_refused(values: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        Settings(**values)  # type: ignore[arg-type]


def test_walletconnect_project_id_is_unset_or_a_real_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().walletconnect_project_id is None
    monkeypatch.setenv("SMALLTTS_WALLETCONNECT_PROJECT_ID", "0123456789abcdef0123456789ABCDEF")
    assert Settings().walletconnect_project_id == "0123456789abcdef0123456789ABCDEF"
    monkeypatch.setenv("SMALLTTS_WALLETCONNECT_PROJECT_ID", "your-project-id")  # a placeholder
    with pytest.raises(ValidationError):
        Settings()


def test_get_settings_is_cached() -> None:
    get_settings.cache_clear()
    try:
        assert get_settings() is get_settings()
    finally:
        get_settings.cache_clear()


def test_runtime_limits_carry_the_service_bounds_to_the_cli_and_api(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = Settings().runtime_limits()
    assert (limits.min_duration_s, limits.max_duration_s, limits.max_steps) == (0.5, 30.0, 32)
    monkeypatch.setenv("SMALLTTS_MAX_STEPS", "8")
    assert Settings().runtime_limits().max_steps == 8

"""Service settings, read from the environment (prefix `SMALLTTS_`, nested groups joined by `__`).

    SMALLTTS_PORT=8080 SMALLTTS_MAX_BATCH_SIZE=16 SMALLTTS_LOG_JSON=1 smalltts serve

Build them once with `get_settings()` (cached; tests override the dependency or pass `Settings(...)` to
`create_app`). Nothing here is read at import time.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from model.runtime.limits import RuntimeLimits
from service.payment.settings import PaymentSettings

AudioFormat = Literal["wav", "flac", "ogg"]
AUDIO_FORMATS: tuple[AudioFormat, ...] = ("wav", "flac", "ogg")


class Settings(BaseSettings):
    """Every knob of the HTTP service; each field is `SMALLTTS_<FIELD>` in the environment."""

    # hide_input_in_errors: a validation error would otherwise quote its input, and one input is a private key.
    model_config = SettingsConfigDict(
        env_prefix="SMALLTTS_", env_nested_delimiter="__", extra="ignore", hide_input_in_errors=True
    )

    # --- server --------------------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Interface uvicorn binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port uvicorn binds to (0 picks a free one).")
    model_dir: Path | None = Field(
        default=None, description="Model folder; unset: the published weights, the bundled demo or a random tiny model."
    )
    auto_fetch: bool = Field(
        default=True,
        description="`smalltts run` with no model_dir: download the published weights first when the hub answers "
        "(else it serves the bundled demo and says why); false skips the attempt.",
    )
    providers: list[str] | None = Field(
        default=None,
        description="ONNX Runtime execution providers in order of preference; unset: the runtime's choice.",
    )
    devices: str = Field(
        default="auto",
        description="'auto' (one worker per visible GPU, else the CPU), 'cpu', or GPU ids such as 'cuda:0,cuda:1'.",
    )
    data_dir: Path = Field(default=Path(".smalltts/data"), description="Where uploaded voices are stored.")
    frontend_dir: Path = Field(default=Path("frontend/dist"), description="Built frontend served at / when it exists.")
    builtin_voice: bool = Field(
        default=True, description="Create the voice 'default' from espeak-ng speech at first start (needs espeak-ng)."
    )

    # --- batching -------------------------------------------------------------------------------------
    max_batch_size: int = Field(default=8, ge=1, le=256, description="Most requests in one model call.")
    max_wait_ms: float = Field(
        default=15.0,
        ge=0,
        le=10_000,
        description="How long a batch waits for more requests after its first one arrived.",
    )
    max_length_ratio: float = Field(
        default=2.0,
        ge=1.0,
        description="Requests share a batch only if their frame counts differ by at most this factor.",
    )
    request_timeout_s: float = Field(
        default=120.0, gt=0, description="A request not finished this long after it arrived gets 504."
    )
    max_queue_size: int = Field(default=64, ge=1, description="Waiting requests beyond this get 503 with Retry-After.")
    workers: int = Field(
        default=1, ge=1, le=64, description="Inference workers per device (threads sharing its model)."
    )

    # --- limits on what users send --------------------------------------------------------------------
    max_text_chars: int = Field(default=1000, ge=1, description="Longest accepted text, in characters.")
    max_upload_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, description="Largest accepted reference file.")
    min_duration_s: float = Field(default=0.5, gt=0, description="Shortest duration a request may ask for.")
    max_duration_s: float = Field(default=30.0, gt=0, description="Longest duration a request may ask for.")
    min_reference_s: float = Field(default=0.5, ge=0, description="Shortest accepted reference recording.")
    max_reference_s: float = Field(default=30.0, gt=0, description="Longest accepted reference recording.")
    silence_threshold: float = Field(
        default=1e-3, ge=0, description="A reference whose peak amplitude stays below this is refused as silent."
    )
    max_steps: int = Field(default=32, ge=1, description="Most sampler steps a request may ask for (cost bound).")
    default_steps: int | None = Field(
        default=None,
        ge=1,
        description="Sampler steps when a request does not say; unset: the model's own (4 for the published weights).",
    )
    strict_tags: bool = Field(
        default=False, description="Unknown [tags] in text: 422 when true, a warning header otherwise."
    )
    max_voices: int = Field(default=1000, ge=1, description="Most stored voices; uploads beyond it get 409.")

    # --- web page -------------------------------------------------------------------------------------
    walletconnect_project_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F]{32}$",
        description="WalletConnect (Reown) project id, published in /v1/config: the page then also offers "
        "WalletConnect (phone wallets by QR code). Unset: no WalletConnect. Public, not a secret.",
    )

    # --- logs -----------------------------------------------------------------------------------------
    log_json: bool = Field(default=False, description="One JSON object per log line instead of plain text.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="Log level.")

    # --- payments (service/payment/settings.py; SMALLTTS_PAYMENT__MODE=off makes every route free) ---------
    payment: PaymentSettings = Field(default_factory=PaymentSettings, description="x402 payments.")

    @model_validator(mode="after")
    def check_ranges(self) -> Settings:
        if self.min_duration_s > self.max_duration_s:
            raise ValueError(f"min_duration_s ({self.min_duration_s}) > max_duration_s ({self.max_duration_s})")
        if self.min_reference_s > self.max_reference_s:
            raise ValueError(f"min_reference_s ({self.min_reference_s}) > max_reference_s ({self.max_reference_s})")
        if self.default_steps is not None and self.default_steps > self.max_steps:
            raise ValueError(f"default_steps ({self.default_steps}) > max_steps ({self.max_steps})")
        return self

    def runtime_limits(self) -> RuntimeLimits:
        """These limits for the runtime, so `say`, `batch`, `interactive` and the Python API refuse what the
        service refuses (duration, reference length and silence, steps)."""
        return RuntimeLimits(
            min_duration_s=self.min_duration_s,
            max_duration_s=self.max_duration_s,
            min_reference_s=max(self.min_reference_s, 1e-3),
            max_reference_s=self.max_reference_s,
            silence_peak=self.silence_threshold,
            max_steps=self.max_steps,
        )

    @property
    def max_body_bytes(self) -> int:
        """Whole multipart body allowed on upload routes: the file plus room for the text and boundaries."""
        return self.max_upload_bytes + FORM_OVERHEAD_BYTES + 4 * self.max_text_chars

    @property
    def max_json_bytes(self) -> int:
        """Whole JSON body allowed on JSON routes: the text (UTF-8, escaped) plus room for the other fields."""
        return JSON_OVERHEAD_BYTES + 12 * self.max_text_chars


# Multipart boundaries, part headers and small fields; JSON keys and small values.
FORM_OVERHEAD_BYTES = 16 * 1024
JSON_OVERHEAD_BYTES = 16 * 1024


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()

"""GET /v1/config: the public limits and facts the frontend needs before it asks for speech."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from model.text.vocab import TAGS
from service.deps import ServiceDep
from service.errors import error_responses
from service.settings import AUDIO_FORMATS

router = APIRouter(tags=["meta"])


class ConfigResponse(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "model_id": "local/tiny",
                    "trained": False,
                    "precision": "fp32",
                    "sample_rate_hz": 24000,
                    "max_text_chars": 1000,
                    "max_upload_bytes": 2097152,
                    "min_duration_s": 0.5,
                    "max_duration_s": 30.0,
                    "min_reference_s": 0.5,
                    "max_reference_s": 30.0,
                    "max_steps": 32,
                    "default_steps": 4,
                    "sampler": "student",
                    "tags": ["laughter", "cough"],
                    "tags_performed": True,
                    "formats": ["wav", "flac", "ogg"],
                    "voices_enabled": True,
                    "walletconnect_project_id": None,
                    "contract_wallets_accepted": False,
                }
            ]
        }
    }

    model_id: str
    trained: bool = Field(description="False for random weights: the audio is noise, not speech.")
    precision: str = Field(default="fp32", description="fp32, or int8 / fp16 for a folder made by `smalltts optimize`.")
    sample_rate_hz: int
    max_text_chars: int
    max_upload_bytes: int
    min_duration_s: float
    max_duration_s: float
    min_reference_s: float
    max_reference_s: float
    max_steps: int
    default_steps: int = Field(description="Sampler steps when a request does not say (the model's own unless set).")
    sampler: str = Field(description="student (the distilled 4-step loop) or ddim (a many-step teacher).")
    tags: list[str] = Field(description="Tags the text may hold, written [tag].")
    tags_performed: bool = Field(
        description="False when the model never heard a non-verbal sound (the bundled demo, trained on espeak-ng): "
        "tags are accepted but not performed; the published weights perform them."
    )
    formats: list[str] = Field(description="Values of /synthesize's `format`.")
    voices_enabled: bool = True
    walletconnect_project_id: str | None = Field(
        default=None, description="The page offers WalletConnect with this project id; null: it does not."
    )
    contract_wallets_accepted: bool = Field(
        default=False,
        description="Whether payments signed by contract (smart) wallets are accepted; the page offers the "
        "Coinbase Smart Wallet only then.",
    )


@router.get("/v1/config", responses=error_responses(503), summary="Public limits and model facts")
async def get_config(service: ServiceDep) -> ConfigResponse:
    """What the frontend needs to validate before it pays: limits, tags, formats and the model."""
    limits = service.limits
    return ConfigResponse(
        model_id=service.synthesizer.model_id,
        trained=service.synthesizer.trained,
        precision=service.synthesizer.precision,
        sample_rate_hz=service.synthesizer.sample_rate_hz,
        max_text_chars=limits.max_text_chars,
        max_upload_bytes=limits.max_upload_bytes,
        min_duration_s=limits.min_duration_s,
        max_duration_s=limits.max_duration_s,
        min_reference_s=limits.min_reference_s,
        max_reference_s=limits.max_reference_s,
        max_steps=limits.max_steps,
        default_steps=limits.default_steps,
        sampler=service.synthesizer.sampler,
        tags=list(TAGS),
        tags_performed=service.synthesizer.performs_tags,
        formats=list(AUDIO_FORMATS),
        walletconnect_project_id=service.settings.walletconnect_project_id,
        contract_wallets_accepted=service.settings.payment.allow_contract_wallets,
    )

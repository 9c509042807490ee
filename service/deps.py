"""Every dependency the routes take, as `Annotated` aliases, plus the state object they read.

The lifespan builds one `ServiceState` and stores it on `app.state.service`; handlers never reach into
`app.state` themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from model.runtime.synthesizer import Synthesizer
from service.batching.pool import WorkerPool
from service.errors import NotReadyError, UnsupportedMediaTypeError
from service.metrics import ServiceMetrics
from service.settings import Settings
from service.synthesis import ServiceLimits, SynthesisPipeline
from service.voices import VoiceStore


@dataclass
class ServiceState:
    """The long-lived resources, owned by the lifespan."""

    settings: Settings
    synthesizer: Synthesizer  # the first device's; latents and facts come from it
    pool: WorkerPool
    voices: VoiceStore
    pipeline: SynthesisPipeline
    limits: ServiceLimits


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


def get_service(request: Request) -> ServiceState:
    service: ServiceState | None = getattr(request.app.state, "service", None)
    if service is None:
        raise NotReadyError("the model is still loading; retry shortly")
    return service


def get_pipeline(service: Annotated[ServiceState, Depends(get_service)]) -> SynthesisPipeline:
    return service.pipeline


def get_voices(service: Annotated[ServiceState, Depends(get_service)]) -> VoiceStore:
    return service.voices


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def require_multipart(request: Request) -> None:
    """415 unless the body is multipart/form-data (the upload routes)."""
    media_type = _media_type(request)
    if media_type != "multipart/form-data":
        raise UnsupportedMediaTypeError(
            f"Content-Type must be multipart/form-data, got {media_type or 'none'}", field="content-type"
        )


def require_json(request: Request) -> None:
    """415 unless the body is JSON (application/json or application/*+json)."""
    media_type = _media_type(request)
    if not (
        media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))
    ):
        raise UnsupportedMediaTypeError(
            f"Content-Type must be application/json, got {media_type or 'none'}", field="content-type"
        )


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
ServiceDep = Annotated[ServiceState, Depends(get_service)]
PipelineDep = Annotated[SynthesisPipeline, Depends(get_pipeline)]
VoicesDep = Annotated[VoiceStore, Depends(get_voices)]

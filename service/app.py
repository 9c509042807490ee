"""The FastAPI application: `create_app(settings)` and the lifespan that owns the model and the worker pool.

    uvicorn --factory service.app:create_app          # settings from SMALLTTS_* variables
    smalltts serve --port 8000                         # the same through the CLI

Nothing is built at import time. The lifespan first runs the payment layer's startup checks and its
reconciliation loop (service.payment, when payments are on), then loads one synthesizer per device (in a
thread), starts the worker pool, opens the voice store and publishes everything as `app.state.service` (read
through deps.py); on shutdown it stops the workers, fails whatever still waits with 503, and closes payments.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from model.runtime.assets import resolve_model_dir
from model.runtime.synthesizer import Synthesizer
from model.text.phonemize import get_phonemizer
from service.api import devchain, health, meta, speech, synthesize, voices
from service.api.docs import install_docs
from service.batching.pool import WorkerPool
from service.batching.scheduler import BatchingConfig
from service.builtin_voice import create_builtin_voice
from service.deps import ServiceState
from service.devices import device_providers
from service.errors import install_error_handlers
from service.metrics import ServiceMetrics
from service.middleware import BodyLimitMiddleware, RequestLogMiddleware
from service.payment.install import install_service_payment
from service.payment.layer import PaymentLayer
from service.settings import Settings, get_settings
from service.synthesis import ServiceLimits, SynthesisPipeline
from service.voices import BUILTIN_VOICE_ID, VoiceStore

logger = logging.getLogger("smalltts.service")

API_VERSION = "1.0.0"
OPENAPI_TAGS = [
    {"name": "synthesize", "description": "The original's paid route: multipart reference + text -> WAV."},
    {"name": "speech", "description": "OpenAI-compatible text to speech."},
    {"name": "voices", "description": "Stored reference voices."},
    {"name": "health", "description": "Liveness, readiness and Prometheus metrics."},
    {"name": "meta", "description": "Public limits for clients."},
]


def create_app(settings: Settings | None = None, *, synthesizers: Sequence[Synthesizer] | None = None) -> FastAPI:
    """Builds the app; `synthesizers` (one per device) skips model loading, for the CLI and tests."""
    settings = settings if settings is not None else get_settings()
    app = FastAPI(
        title="smalltts",
        version=API_VERSION,
        summary="Expressive voice-cloning text to speech.",
        lifespan=_lifespan,
        openapi_tags=OPENAPI_TAGS,
        generate_unique_id_function=_operation_id,
        docs_url=None,  # FastAPI's pages load their scripts from a CDN; install_docs serves them from here
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = ServiceMetrics()
    app.state.preloaded = list(synthesizers) if synthesizers is not None else None
    app.state.service = None
    install_error_handlers(app)
    for router in (synthesize.router, speech.router, voices.router, health.router, meta.router):
        app.include_router(router)
    install_docs(app)
    devchain_router = devchain.build_devchain_router(settings.payment)
    if devchain_router is not None:  # only on the local dev chain: it hands out the dev payer's test key
        app.include_router(devchain_router)
    upload_limit = (settings.max_body_bytes, "audio")
    app.add_middleware(
        BodyLimitMiddleware,
        limits={"/synthesize": upload_limit, "/v1/voices": upload_limit},
        default=(settings.max_json_bytes, "body"),
    )
    # Payments (service/payment) install their middleware here: inside the request log (so 402s are logged
    # and counted) and outside the body limits (so an unpaid request gets 402 before any validation).
    app.state.payment = install_service_payment(app, settings)
    app.add_middleware(RequestLogMiddleware, metrics=app.state.metrics)
    _mount_frontend(app, settings.frontend_dir)
    return app


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def _mount_frontend(app: FastAPI, frontend_dir: Path) -> None:
    # Mounted last, so every API route matches first; html=True serves index.html for "/".
    if (frontend_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=frontend_dir, html=True), name="frontend")


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    payment: PaymentLayer | None = app.state.payment
    async with contextlib.AsyncExitStack() as stack:
        if payment is not None:
            # Entered first: a wrong chain or an unreachable ledger stops startup before the model loads, and
            # the ledger closes only after the workers have stopped.
            await stack.enter_async_context(payment.running())
        await stack.enter_async_context(_serving(app))
        yield


@contextlib.asynccontextmanager
async def _serving(app: FastAPI) -> AsyncIterator[None]:
    """The model, the worker pool and the voice store, published as `app.state.service` while they run."""
    settings: Settings = app.state.settings
    metrics: ServiceMetrics = app.state.metrics
    synthesizers: list[Synthesizer] = app.state.preloaded or await anyio.to_thread.run_sync(load_synthesizers, settings)
    primary = synthesizers[0]
    limits = ServiceLimits.combine(settings, primary.limits, primary.max_tokens, primary.default_steps)
    metrics.set_model(primary.model_id, primary.trained)
    pool = WorkerPool(
        synthesizers,
        BatchingConfig(
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            max_length_ratio=settings.max_length_ratio,
            request_timeout_s=settings.request_timeout_s,
            max_queue_size=settings.max_queue_size,
        ),
        frame_rate_hz=primary.frame_rate_hz,
        workers_per_device=settings.workers,
        observer=metrics,
    )
    metrics.track_queue_depth(lambda: pool.queue_depth)
    store = VoiceStore(
        settings.data_dir / "voices",
        model_id=primary.model_id,
        sample_rate_hz=primary.sample_rate_hz,
        encode_reference=primary.encode_reference,
        max_voices=settings.max_voices,
    )
    await anyio.to_thread.run_sync(store.load)
    if settings.builtin_voice and BUILTIN_VOICE_ID not in store:
        await anyio.to_thread.run_sync(create_builtin_voice, store)
    pipeline = SynthesisPipeline(primary, pool, limits, metrics, strict_tags=settings.strict_tags)
    # Load espeak-ng and the number speller now rather than in the first request (seconds, once a process).
    await anyio.to_thread.run_sync(get_phonemizer().load)
    async with pool.running():
        app.state.service = ServiceState(
            settings=settings, synthesizer=primary, pool=pool, voices=store, pipeline=pipeline, limits=limits
        )
        logger.info(
            "ready",
            extra={
                "model_id": primary.model_id,
                "trained": primary.trained,
                "precision": primary.precision,
                "providers": ",".join(primary.providers),
                "devices": len(synthesizers),
                "workers": len(pool.workers),
                "max_batch_size": settings.max_batch_size,
            },
        )
        try:
            yield
        finally:
            app.state.service = None


def load_synthesizers(settings: Settings) -> list[Synthesizer]:
    """Resolves the model folder and opens it once per device (blocking; the lifespan runs it in a thread)."""
    model_dir = resolve_model_dir(settings.model_dir)
    # The workers of a device share its synthesizer and split the cores (CPU); TensorRT keeps its engines and
    # timing cache in the data dir, so a restart does not rebuild them.
    trt_cache = settings.data_dir / "tensorrt"
    synthesizers = [
        Synthesizer.load(model_dir, providers, workers=settings.workers, tensorrt_cache_dir=trt_cache)
        for providers in device_providers(settings)
    ]
    logger.info("loaded model", extra={"model_dir": str(model_dir), "model_id": synthesizers[0].model_id})
    return synthesizers

"""Liveness, readiness and metrics: GET /health ("ok", as the original), GET /ready, GET /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel

from service.deps import MetricsDep
from service.errors import NotReadyError, error_responses
from service.metrics import METRICS_CONTENT_TYPE

router = APIRouter(tags=["health"])


class ReadyResponse(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {"status": "ready", "model_id": "local/tiny", "trained": False, "queue_depth": 0, "max_queue_size": 64}
            ]
        }
    }

    status: str
    model_id: str
    trained: bool
    queue_depth: int
    max_queue_size: int


@router.get(
    "/health",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"example": "ok"}}, "description": "The process is up."}},
    summary="Liveness",
)
async def get_health() -> PlainTextResponse:
    """Answers "ok" while the process runs (the original's route)."""
    return PlainTextResponse("ok")


@router.get("/ready", responses=error_responses(503), summary="Readiness")
async def get_ready(request: Request) -> ReadyResponse:
    """200 when the model is loaded and the queue has room; 503 otherwise."""
    service = getattr(request.app.state, "service", None)
    if service is None or not service.pool.is_running:
        raise NotReadyError("the model is not loaded yet")
    if service.pool.is_saturated:
        raise NotReadyError(f"the request queue is full ({service.pool.queue_depth} waiting)")
    return ReadyResponse(
        status="ready",
        model_id=service.synthesizer.model_id,
        trained=service.synthesizer.trained,
        queue_depth=service.pool.queue_depth,
        max_queue_size=service.pool.config.max_queue_size,
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format.",
        }
    },
    summary="Prometheus metrics",
)
async def get_metrics(metrics: MetricsDep) -> Response:
    """Request counts, queue depth, batch sizes, stage latencies and audio seconds produced."""
    return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

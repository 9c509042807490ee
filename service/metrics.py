"""Prometheus metrics of one app instance (its own registry, so several apps can live in one process).

smalltts_requests_total{route,method,status}      HTTP requests, by route template and status
smalltts_request_duration_seconds{route}          wall time per request
smalltts_queue_depth                              requests waiting for a batch (read at scrape time)
smalltts_batch_size                               requests per model call
smalltts_stage_seconds{stage}                     decode_reference, encode_reference, tokenize, queue_wait,
                                                  inference (one model call), encode_audio
smalltts_audio_seconds_total                      seconds of audio produced
smalltts_requests_rejected_total{reason}          queue_full, expired (dropped before compute), timeout
smalltts_model_info{model_id,trained}             1 for the loaded model
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
STAGES = ("decode_reference", "encode_reference", "tokenize", "queue_wait", "inference", "encode_audio")
_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256)


class ServiceMetrics:
    """Owns the registry; implements `PoolObserver` for the worker pool."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "smalltts_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "smalltts_request_duration_seconds",
            "Wall time per HTTP request",
            ["route"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.queue_depth = Gauge("smalltts_queue_depth", "Requests waiting for a batch", registry=self.registry)
        self.batch_size = Histogram(
            "smalltts_batch_size", "Requests per model call", buckets=_BATCH_BUCKETS, registry=self.registry
        )
        self.stage_seconds = Histogram(
            "smalltts_stage_seconds",
            "Latency per processing stage",
            ["stage"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.audio_seconds = Counter("smalltts_audio_seconds", "Seconds of audio produced", registry=self.registry)
        self.rejected = Counter(
            "smalltts_requests_rejected",
            "Requests refused or dropped before compute",
            ["reason"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "smalltts_model_info", "The loaded model (value 1)", ["model_id", "trained"], registry=self.registry
        )
        for stage in STAGES:  # present from the start, so dashboards see zeros rather than gaps
            self.stage_seconds.labels(stage=stage)
        for reason in ("queue_full", "expired", "timeout"):
            self.rejected.labels(reason=reason)

    def track_queue_depth(self, read_depth: Callable[[], float]) -> None:
        self.queue_depth.set_function(read_depth)

    def set_model(self, model_id: str, trained: bool) -> None:
        self.model_info.labels(model_id=model_id, trained=str(trained).lower()).set(1)

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stage=stage).observe(seconds)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.request_seconds.labels(route=route).observe(seconds)

    # PoolObserver
    def on_batch(self, batch_size: int, compute_s: float) -> None:
        self.batch_size.observe(batch_size)
        self.observe_stage("inference", compute_s)

    def on_expired(self, count: int) -> None:
        self.rejected.labels(reason="expired").inc(count)

    def on_rejected(self, reason: str) -> None:
        self.rejected.labels(reason=reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

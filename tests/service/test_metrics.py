from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from service.metrics import STAGES, ServiceMetrics


def _samples(metrics: ServiceMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    families = text_string_to_metric_families(metrics.render().decode())
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }


def test_zeros_are_there_before_anything_happens() -> None:
    samples = _samples(ServiceMetrics())
    for stage in STAGES:
        assert samples[("smalltts_stage_seconds_count", frozenset({("stage", stage)}))] == 0
    for reason in ("queue_full", "expired", "timeout"):
        assert samples[("smalltts_requests_rejected_total", frozenset({("reason", reason)}))] == 0


def test_what_the_service_observes_is_rendered() -> None:
    metrics = ServiceMetrics()
    depth = [3.0]
    metrics.track_queue_depth(lambda: depth[0])
    metrics.set_model("tiny", trained=False)
    metrics.observe_request("/synthesize", "POST", 200, 0.2)
    metrics.observe_request("/synthesize", "POST", 200, 0.4)
    metrics.on_batch(4, 0.05)
    metrics.on_expired(2)
    metrics.on_rejected("queue_full")
    depth[0] = 5.0  # read at scrape time
    samples = _samples(metrics)
    ok = frozenset({("route", "/synthesize"), ("method", "POST"), ("status", "200")})
    assert samples[("smalltts_requests_total", ok)] == 2
    assert (
        samples[("smalltts_request_duration_seconds_sum", frozenset({("route", "/synthesize")}))] == 0.6000000000000001
    )
    assert samples[("smalltts_queue_depth", frozenset())] == 5
    assert samples[("smalltts_batch_size_sum", frozenset())] == 4
    assert samples[("smalltts_stage_seconds_count", frozenset({("stage", "inference")}))] == 1
    assert samples[("smalltts_requests_rejected_total", frozenset({("reason", "expired")}))] == 2
    assert samples[("smalltts_requests_rejected_total", frozenset({("reason", "queue_full")}))] == 1
    assert samples[("smalltts_model_info", frozenset({("model_id", "tiny"), ("trained", "false")}))] == 1


def test_each_instance_has_its_own_registry() -> None:
    first, second = ServiceMetrics(), ServiceMetrics()
    first.on_rejected("timeout")
    assert _samples(second)[("smalltts_requests_rejected_total", frozenset({("reason", "timeout")}))] == 0

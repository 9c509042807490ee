"""GET /health, /ready and /metrics (parsed with prometheus_client's own parser)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.service.conftest import ServeFactory
from tests.service.support import form

pytestmark = pytest.mark.anyio


async def test_health_is_ok_as_the_original(serve: ServeFactory) -> None:
    async with serve() as served:
        reply = await served.client.get("/health")
    assert reply.status_code == 200
    assert reply.text == "ok"


async def test_ready(serve: ServeFactory) -> None:
    async with serve(max_queue_size=5) as served:
        reply = await served.client.get("/ready")
    assert reply.status_code == 200
    assert reply.json()["status"] == "ready"
    assert reply.json()["max_queue_size"] == 5


async def test_metrics_are_exposed_and_parseable(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        ok = await served.client.post("/synthesize", params={"duration": 2.0}, **form("Hello.", reference_wav))
        bad = await served.client.post("/synthesize", params={"duration": -1}, **form("Hello.", reference_wav))
        assert (ok.status_code, bad.status_code) == (200, 422)
        reply = await served.client.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(reply.text)}
    requests = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["smalltts_requests"].samples
        if s.name == "smalltts_requests_total"
    }
    assert requests[("/synthesize", "200")] == 1
    assert requests[("/synthesize", "422")] == 1
    assert families["smalltts_queue_depth"].samples[0].value == 0
    batch_count = [s for s in families["smalltts_batch_size"].samples if s.name == "smalltts_batch_size_count"]
    assert batch_count[0].value == 1
    stages = {
        s.labels["stage"]: s.value
        for s in families["smalltts_stage_seconds"].samples
        if s.name == "smalltts_stage_seconds_count"
    }
    # The refused request was tokenized but never decoded: its duration is checked before the upload.
    assert {stage: stages[stage] for stage in ("decode_reference", "tokenize", "queue_wait", "inference")} == {
        "decode_reference": 1,
        "tokenize": 2,
        "queue_wait": 1,
        "inference": 1,
    }
    audio = [s for s in families["smalltts_audio_seconds"].samples if s.name == "smalltts_audio_seconds_total"]
    assert audio[0].value == pytest.approx(15 * 3200 / 24_000)
    model = families["smalltts_model_info"].samples[0]
    assert model.labels["trained"] == "false" and model.value == 1

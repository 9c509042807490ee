"""The real app through its lifespan: model loading, batching under concurrency, 503 and 504, the frontend."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.settings import Settings
from tests.service.conftest import ServeFactory
from tests.service.support import GatedSynthesizer, form

pytestmark = pytest.mark.anyio


async def test_lifespan_loads_the_model_and_publishes_state(serve: ServeFactory) -> None:
    async with serve(preload=False) as served:
        assert served.state.synthesizer.model_id.startswith("random-tiny")
        assert served.state.pool.is_running
        ready = await served.client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["trained"] is False
    assert served.app.state.service is None  # shutdown released it


async def test_concurrent_requests_are_served_in_fewer_model_calls(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve(max_batch_size=8, max_wait_ms=300) as served:
        # Store the voice first so the concurrent requests spend their time in the queue, not decoding.
        created = await served.client.post("/v1/voices", **form(text=None, audio=reference_wav))
        voice_id = created.json()["id"]
        replies = await asyncio.gather(
            *(
                served.client.post(
                    "/synthesize", params={"duration": 1.0, "seed": i, "voice": voice_id}, **form(f"Number {i}.")
                )
                for i in range(8)
            )
        )
        assert [r.status_code for r in replies] == [200] * 8
        stats = served.state.pool.stats
        assert stats.requests_completed == 8
        assert stats.batches_run < 8
        assert max(int(r.headers["X-Smalltts-Batch-Size"]) for r in replies) > 1
        assert sorted(int(r.headers["X-Smalltts-Seed"]) for r in replies) == list(range(8))


async def test_queue_full_answers_503_with_retry_after(
    serve: ServeFactory, gated: GatedSynthesizer, reference_wav: bytes
) -> None:
    async with serve(synthesizers=[gated], max_batch_size=1, max_wait_ms=0, max_queue_size=1) as served:
        client, pool = served.client, served.state.pool
        params = {"duration": 1.0}
        first = asyncio.create_task(client.post("/synthesize", params=params, **form(audio=reference_wav)))
        while not gated.calls:  # the worker is now blocked on request 1
            await asyncio.sleep(0.01)
        second = asyncio.create_task(client.post("/synthesize", params=params, **form(audio=reference_wav)))
        while pool.queue_depth < 1:
            await asyncio.sleep(0.01)
        third = await client.post("/synthesize", params=params, **form(audio=reference_wav))
        assert third.status_code == 503
        assert int(third.headers["Retry-After"]) >= 1
        assert third.json()["error"]["code"] == "queue_full"
        ready = await client.get("/ready")
        assert ready.status_code == 503  # saturated
        gated.open()
        assert [(await first).status_code, (await second).status_code] == [200, 200]
        metrics = (await client.get("/metrics")).text
        assert 'smalltts_requests_rejected_total{reason="queue_full"} 1.0' in metrics


async def test_timeout_answers_504_and_the_request_is_never_computed(
    serve: ServeFactory, gated: GatedSynthesizer, reference_wav: bytes
) -> None:
    async with serve(synthesizers=[gated], max_batch_size=1, max_wait_ms=0, request_timeout_s=1.0) as served:
        client = served.client
        params = {"duration": 1.0}
        first = asyncio.create_task(client.post("/synthesize", params=params, **form(audio=reference_wav)))
        while not gated.calls:
            await asyncio.sleep(0.01)
        second = await client.post("/synthesize", params=params, **form(audio=reference_wav))
        assert second.status_code == 504
        assert second.json()["error"]["code"] == "timeout"
        assert (await first).status_code == 504  # still computing when its time ran out
        gated.open()
        third = await client.post("/synthesize", params=params, **form(audio=reference_wav))
        assert third.status_code == 200
        assert gated.calls == [1, 1]  # the request that timed out in the queue never reached the model


async def test_frontend_is_served_at_root_without_shadowing_the_api(serve: ServeFactory, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<html>smalltts app</html>")
    async with serve(frontend_dir=dist) as served:
        page = await served.client.get("/")
        assert page.status_code == 200 and "smalltts app" in page.text
        assert (await served.client.get("/health")).text == "ok"
        assert (await served.client.get("/v1/config")).status_code == 200
        missing = await served.client.get("/no-such-file.js")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"


async def test_unknown_route_is_a_json_404(serve: ServeFactory) -> None:
    async with serve() as served:
        reply = await served.client.get("/nope")
        assert reply.status_code == 404
        assert reply.json()["error"]["code"] == "not_found"


async def test_routes_have_tagged_operation_ids(serve: ServeFactory) -> None:
    async with serve() as served:
        schema = (await served.client.get("/openapi.json")).json()
    operation_ids = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {
        "synthesize-synthesize_speech",
        "speech-create_speech",
        "voices-create_voice",
        "voices-list_voices",
        "voices-delete_voice",
        "health-get_health",
        "health-get_ready",
        "health-get_metrics",
        "meta-get_config",
    } <= operation_ids


async def test_requests_before_startup_are_not_ready(tmp_path: Path, tiny_model_dir: Path) -> None:
    app = create_app(Settings(model_dir=tiny_model_dir, data_dir=tmp_path, builtin_voice=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        reply = await client.get("/v1/config")  # no lifespan ran: the model is not loaded
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "not_ready"


async def test_builtin_voice_is_created_once(serve: ServeFactory) -> None:
    async with serve(builtin_voice=True) as served:
        voices = (await served.client.get("/v1/voices")).json()["voices"]
    if not voices:
        pytest.skip("espeak-ng binary not installed")
    assert [v["id"] for v in voices] == ["default"]
    async with serve(builtin_voice=True) as served:  # restarted: found on disk, not made again
        again = (await served.client.get("/v1/voices")).json()["voices"]
    assert again == voices


async def test_a_ddim_model_sets_the_default_steps_and_one_above_the_maximum_stops_startup(
    serve: ServeFactory, ddim_model_dir: Path, reference_wav: bytes
) -> None:
    from model.runtime.synthesizer import Synthesizer

    ddim = Synthesizer.load(ddim_model_dir)
    async with serve(synthesizers=[ddim]) as served:
        config = (await served.client.get("/v1/config")).json()
        reply = await served.client.post(
            "/synthesize", params={"duration": 1.0, "seed": 1}, **form("Hi.", audio=reference_wav)
        )
    assert (config["default_steps"], config["sampler"], config["max_steps"]) == (12, "ddim", 32)
    assert reply.status_code == 200 and reply.headers["X-Smalltts-Steps"] == "12"
    with pytest.raises(ValueError, match=r"model's default is 12 .* maximum 8; raise SMALLTTS_MAX_STEPS"):
        async with serve(synthesizers=[ddim], max_steps=8):
            pass

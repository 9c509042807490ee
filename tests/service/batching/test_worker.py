from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from model.errors import InputError
from model.runtime.synthesizer import SynthesisRequest, SynthesisResult
from service.batching.queue import RequestQueue
from service.batching.request import TTSRequest
from service.batching.scheduler import BatchingConfig, BatchScheduler
from service.batching.worker import PoolStats, Worker
from service.errors import RequestTimeoutError
from tests.service.batching.fakes import FakeSynthesizer
from tests.service.batching.fakes import request as synthesis_request

pytestmark = pytest.mark.anyio


class RecordingObserver:
    def __init__(self) -> None:
        self.batches: list[int] = []
        self.expired = 0

    def on_batch(self, batch_size: int, compute_s: float) -> None:
        self.batches.append(batch_size)

    def on_expired(self, count: int) -> None:
        self.expired += count

    def on_rejected(self, reason: str) -> None:
        pass


def tts(seed: int, *, deadline_s: float = 60.0) -> TTSRequest:
    now = time.monotonic()
    return TTSRequest(
        synthesis=synthesis_request(1.0, seed=seed),
        num_frames=8,
        batch_key=(4, "trained"),
        arrival_time=now,
        deadline=now + deadline_s,
        future=asyncio.get_running_loop().create_future(),
    )


def worker(synthesizer: object, observer: RecordingObserver | None = None) -> Worker:
    config = BatchingConfig()
    scheduler = BatchScheduler(RequestQueue(config.max_queue_size), config)
    return Worker("w0", synthesizer, scheduler, PoolStats(), observer)  # type: ignore[arg-type]


async def test_a_batch_is_one_call_and_every_future_gets_its_result() -> None:
    fake, observer = FakeSynthesizer(), RecordingObserver()
    w = worker(fake, observer)
    requests = [tts(1), tts(2), tts(3)]
    await w.run_batch(requests)
    assert fake.batches == [[1, 2, 3]]
    assert [r.future.result().seed for r in requests] == [1, 2, 3]
    assert all(r.batch_size == 3 and r.compute_s >= 0 for r in requests)
    assert (w.stats.batches_run, w.stats.requests_completed, w.stats.mean_batch_size) == (1, 3, 3.0)
    assert observer.batches == [3]


async def test_expired_and_abandoned_requests_are_never_computed() -> None:
    fake = FakeSynthesizer()
    w = worker(fake)
    expired, abandoned, live = tts(1, deadline_s=-1.0), tts(2), tts(3)
    abandoned.future.cancel()
    await w.run_batch([expired, abandoned, live])
    assert fake.batches == [[3]]
    assert isinstance(expired.future.exception(), RequestTimeoutError)
    assert live.future.result().seed == 3


async def test_an_input_error_is_retried_one_by_one_so_only_its_request_fails() -> None:
    fake = FakeSynthesizer(fail_seed=2)
    w = worker(fake)
    requests = [tts(1), tts(2), tts(3)]
    await w.run_batch(requests)
    assert fake.batches == [[1, 2, 3], [1], [2], [3]]
    assert isinstance(requests[1].future.exception(), InputError)
    assert (requests[0].future.result().seed, requests[2].future.result().seed) == (1, 3)
    assert (w.stats.requests_completed, w.stats.requests_failed) == (2, 1)


async def test_a_wrong_number_of_results_fails_the_batch() -> None:
    class ShortSynthesizer:
        def synthesize_batch(self, requests: Sequence[SynthesisRequest]) -> list[SynthesisResult]:
            return []

    w = worker(ShortSynthesizer())
    request = tts(1)
    await w.run_batch([request])
    assert "returned 0 results for 1" in str(request.future.exception())

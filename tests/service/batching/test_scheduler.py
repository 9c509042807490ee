from __future__ import annotations

import asyncio
import time

import pytest

from service.batching.queue import RequestQueue
from service.batching.request import TTSRequest
from service.batching.scheduler import BatchingConfig, BatchScheduler
from service.errors import RequestTimeoutError
from tests.service.batching.fakes import request as synthesis_request

pytestmark = pytest.mark.anyio


def tts(frames: int = 10, *, age_s: float = 0.0, deadline_s: float = 60.0) -> TTSRequest:
    arrival = time.monotonic() - age_s
    return TTSRequest(
        synthesis=synthesis_request(frames / 7.5),
        num_frames=frames,
        batch_key=(4, "trained"),
        arrival_time=arrival,
        deadline=arrival + deadline_s,
        future=asyncio.get_running_loop().create_future(),
    )


def scheduler(**config: float) -> BatchScheduler:
    cfg = BatchingConfig(**config)  # type: ignore[arg-type]
    return BatchScheduler(RequestQueue(cfg.max_queue_size), cfg)


async def test_next_batch_waits_for_the_first_request() -> None:
    sched = scheduler(max_batch_size=4, max_wait_ms=0)
    task = asyncio.create_task(sched.next_batch())
    await asyncio.sleep(0.01)
    assert not task.done()
    first = tts()
    sched.queue.try_put(first)
    batch = await asyncio.wait_for(task, 5)
    assert batch.requests == [first]


async def test_fills_up_to_max_batch_size() -> None:
    sched = scheduler(max_batch_size=3, max_wait_ms=10_000)
    items = [tts() for _ in range(5)]
    for item in items:
        sched.queue.try_put(item)
    batch = await asyncio.wait_for(sched.next_batch(), 5)
    assert batch.requests == items[:3]
    assert len(sched.queue) == 2


async def test_requests_arriving_within_the_window_join() -> None:
    sched = scheduler(max_batch_size=8, max_wait_ms=5_000)
    first = tts()
    sched.queue.try_put(first)
    task = asyncio.create_task(sched.next_batch())
    await asyncio.sleep(0)
    late = [tts(), tts()]
    for item in late:
        sched.queue.try_put(item)
    # The window is long: fill to the size limit to end it.
    rest = [tts() for _ in range(5)]
    for item in rest:
        sched.queue.try_put(item)
    batch = await asyncio.wait_for(task, 5)
    assert batch.requests == [first, *late, *rest]


async def test_a_request_older_than_max_wait_leaves_with_what_is_there() -> None:
    sched = scheduler(max_batch_size=8, max_wait_ms=60_000)
    old = tts(age_s=120.0, deadline_s=600.0)  # waited longer than max_wait already (worker was busy)
    sched.queue.try_put(old)
    batch = await asyncio.wait_for(sched.next_batch(), 5)
    assert batch.requests == [old]


async def test_expired_requests_fail_with_timeout_and_are_not_batched() -> None:
    sched = scheduler(max_batch_size=8, max_wait_ms=0)
    stale, fresh = tts(deadline_s=-0.5), tts()
    sched.queue.try_put(stale)
    sched.queue.try_put(fresh)
    batch = await asyncio.wait_for(sched.next_batch(), 5)
    assert batch.requests == [fresh]
    with pytest.raises(RequestTimeoutError):
        stale.future.result()


async def test_abandoned_requests_are_skipped() -> None:
    sched = scheduler(max_batch_size=8, max_wait_ms=0)
    gone, kept = tts(), tts()
    sched.queue.try_put(gone)
    sched.queue.try_put(kept)
    gone.future.cancel()
    batch = await asyncio.wait_for(sched.next_batch(), 5)
    assert batch.requests == [kept]


async def test_short_and_long_requests_go_to_separate_batches_oldest_first() -> None:
    sched = scheduler(max_batch_size=8, max_wait_ms=0, max_length_ratio=2.0)
    short_a, long_a, short_b, long_b = tts(8), tts(200), tts(10), tts(180)
    for item in (short_a, long_a, short_b, long_b):
        sched.queue.try_put(item)
    first = await asyncio.wait_for(sched.next_batch(), 5)
    second = await asyncio.wait_for(sched.next_batch(), 5)
    assert first.requests == [short_a, short_b]
    assert second.requests == [long_a, long_b]


async def test_expired_callback_counts() -> None:
    counted: list[int] = []
    cfg = BatchingConfig(max_batch_size=4, max_wait_ms=0)
    sched = BatchScheduler(RequestQueue(8), cfg, on_expired=counted.append)
    stale = [tts(deadline_s=-1.0), tts(deadline_s=-1.0)]
    for item in [*stale, tts()]:
        sched.queue.try_put(item)
    await asyncio.wait_for(sched.next_batch(), 5)
    assert sum(counted) == 2
    assert all(isinstance(item.future.exception(), RequestTimeoutError) for item in stale)


@pytest.mark.parametrize(
    "field, value",
    [
        ("max_batch_size", 0),
        ("max_wait_ms", -1),
        ("max_length_ratio", 0.5),
        ("request_timeout_s", 0),
        ("max_queue_size", 0),
    ],
)
async def test_config_refuses_nonsense(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        BatchingConfig(**{field: value})  # type: ignore[arg-type]

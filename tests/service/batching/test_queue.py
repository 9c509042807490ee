from __future__ import annotations

import asyncio
import time

import pytest

from service.batching.queue import RequestQueue
from service.batching.request import TTSRequest
from tests.service.batching.fakes import request as synthesis_request

pytestmark = pytest.mark.anyio


def tts(frames: int, *, key: object = (4, "trained"), deadline_s: float = 60.0) -> TTSRequest:
    now = time.monotonic()
    return TTSRequest(
        synthesis=synthesis_request(frames / 7.5),
        num_frames=frames,
        batch_key=key,
        arrival_time=now,
        deadline=now + deadline_s,
        future=asyncio.get_running_loop().create_future(),
    )


async def test_try_put_refuses_beyond_max_size() -> None:
    queue = RequestQueue(max_size=2)
    assert queue.try_put(tts(10)) and queue.try_put(tts(10))
    assert not queue.try_put(tts(10))
    assert len(queue) == 2 and queue.is_full


async def test_abandoned_requests_free_their_place() -> None:
    queue = RequestQueue(max_size=1)
    first = tts(10)
    assert queue.try_put(first)
    first.future.cancel()  # its handler timed out
    assert queue.try_put(tts(10))
    assert len(queue) == 1


async def test_take_compatible_keeps_lengths_within_ratio_and_order() -> None:
    queue = RequestQueue(max_size=10)
    short_a, long_one, short_b, other_key = tts(10), tts(40), tts(15), tts(10, key=(8, "trained"))
    for item in (short_a, long_one, short_b, other_key):
        queue.try_put(item)
    anchor = queue.pop_oldest()
    assert anchor is short_a
    taken = queue.take_compatible([anchor], limit=5, max_length_ratio=2.0)
    assert taken == [short_b]  # the long one and the one with other steps stay queued, in order
    assert queue.pop_oldest() is long_one
    assert queue.pop_oldest() is other_key


async def test_take_compatible_respects_limit() -> None:
    queue = RequestQueue(max_size=10)
    items = [tts(10) for _ in range(5)]
    for item in items:
        queue.try_put(item)
    anchor = queue.pop_oldest()
    assert anchor is not None
    assert queue.take_compatible([anchor], limit=2, max_length_ratio=2.0) == items[1:3]
    assert len(queue) == 2


async def test_take_expired_removes_only_expired() -> None:
    queue = RequestQueue(max_size=10)
    stale, fresh = tts(10, deadline_s=-1.0), tts(10)
    queue.try_put(stale)
    queue.try_put(fresh)
    assert queue.take_expired(time.monotonic()) == [stale]
    assert queue.pop_oldest() is fresh


async def test_wait_for_put_wakes_on_put_and_times_out() -> None:
    queue = RequestQueue(max_size=10)
    assert await queue.wait_for_put(0.01) is False
    waiter = asyncio.create_task(queue.wait_for_put(10.0))
    await asyncio.sleep(0)
    queue.try_put(tts(10))
    assert await waiter is True


def test_max_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_size"):
        RequestQueue(max_size=0)

from __future__ import annotations

import asyncio

import pytest

from service.batching.request import TTSRequest
from tests.service.batching.fakes import request as synthesis_request

pytestmark = pytest.mark.anyio


def tts(*, arrival: float = 100.0, deadline: float = 110.0) -> TTSRequest:
    return TTSRequest(
        synthesis=synthesis_request(1.0),
        num_frames=8,
        batch_key=(4, "trained"),
        arrival_time=arrival,
        deadline=deadline,
        future=asyncio.get_running_loop().create_future(),
    )


async def test_each_request_gets_its_own_increasing_id() -> None:
    first, second = tts(), tts()
    assert second.request_id > first.request_id
    assert first != second  # identity, not field equality: two equal requests are still two requests


async def test_a_request_expires_at_its_deadline() -> None:
    request = tts(deadline=110.0)
    assert not request.is_expired(now=109.9)
    assert request.is_expired(now=110.0)


async def test_a_request_is_abandoned_once_its_future_is_done() -> None:
    request = tts()
    assert not request.is_abandoned
    request.future.cancel()  # the handler gave up
    assert request.is_abandoned


async def test_queue_wait_and_compute_times_come_from_its_timestamps() -> None:
    request = tts(arrival=100.0)
    assert request.compute_s == 0.0  # not run yet
    request.started_time, request.finished_time = 100.25, 101.0
    assert (request.queue_wait_s, request.compute_s) == (0.25, 0.75)
    request.started_time = 99.0  # clocks never make a wait negative
    assert request.queue_wait_s == 0.0

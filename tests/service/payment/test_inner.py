"""The inner facilitators: the SDK's synchronous in-process facilitator runs in payment worker threads."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from x402.schemas import VerifyResponse

from service.payment.attempt import PaymentAttempt, current_attempt
from service.payment.inner import ThreadedFacilitator
from tests.service.payment.test_facilitator import _attempt, _payload, _requirements, in_request

pytestmark = pytest.mark.anyio


async def test_threaded_facilitator_runs_blocking_calls_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    seen: list[tuple[int, PaymentAttempt | None]] = []

    class BlockingSync:
        def verify(self, payload: Any, requirements: Any) -> VerifyResponse:
            seen.append((threading.get_ident(), current_attempt.get()))
            time.sleep(0.05)
            return VerifyResponse(is_valid=True)

    attempt = _attempt()
    with in_request(attempt):
        facilitator = ThreadedFacilitator(BlockingSync())  # type: ignore[arg-type]
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            for _ in range(3):
                await asyncio.sleep(0.005)
                ticks += 1

        await asyncio.gather(facilitator.verify(_payload(), _requirements()), tick())
    [(thread_id, seen_attempt)] = seen
    assert thread_id != loop_thread
    assert seen_attempt is attempt  # the worker thread sees the request's attempt (for RPC outage notes)
    assert ticks == 3  # the loop kept running while the call blocked

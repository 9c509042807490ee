"""BatchScheduler: decides which waiting requests run together in the next model call.

Rule (LitServe's): wait for the first request, then fill until `max_batch_size` or until `max_wait_ms`
after that first request *arrived* (a request that already waited that long leaves at once with whatever
is compatible), and fail expired requests instead of computing them. The oldest request always anchors the
next batch, so nothing starves; only requests of similar length join it (see `RequestQueue.take_compatible`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from service.batching.queue import RequestQueue
from service.batching.request import TTSRequest
from service.errors import RequestTimeoutError


@dataclass(frozen=True)
class BatchingConfig:
    """The batching knobs, passed whole to the scheduler and the pool."""

    max_batch_size: int = 8
    max_wait_ms: float = 15.0
    max_length_ratio: float = 2.0
    request_timeout_s: float = 120.0
    max_queue_size: int = 64

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.max_length_ratio < 1:
            raise ValueError(f"max_length_ratio must be >= 1, got {self.max_length_ratio}")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s must be > 0, got {self.request_timeout_s}")
        if self.max_queue_size < 1:
            raise ValueError(f"max_queue_size must be >= 1, got {self.max_queue_size}")


@dataclass(frozen=True)
class ScheduledBatch:
    """What `next_batch` hands a worker: live requests to compute together, oldest first."""

    requests: list[TTSRequest]
    formed_time: float


def fail_expired(requests: list[TTSRequest], timeout_s: float) -> int:
    """Fails requests whose deadline passed before they were computed (the client gets 504)."""
    failed = 0
    for request in requests:
        if not request.future.done():
            request.future.set_exception(
                RequestTimeoutError(f"not started within request_timeout_s={timeout_s:g} s; the server is busy")
            )
            failed += 1
    return failed


class BatchScheduler:
    """Forms batches from a `RequestQueue`; `next_batch` is called by every `Worker` in a loop."""

    def __init__(
        self, queue: RequestQueue, config: BatchingConfig, on_expired: Callable[[int], None] | None = None
    ) -> None:
        self.queue = queue
        self.config = config
        self.on_expired = on_expired
        # One collector at a time: while one worker computes, the next one fills its batch.
        self._collect_lock = asyncio.Lock()

    async def next_batch(self) -> ScheduledBatch:
        """Waits for the next batch of live requests; never returns an empty batch."""
        async with self._collect_lock:
            while True:
                self._drop_dead()
                anchor = self.queue.pop_oldest()
                if anchor is None:
                    await self.queue.wait_for_put(None)
                    continue
                batch = await self._fill([anchor])
                now = time.monotonic()
                live = [r for r in batch if not r.is_abandoned and not r.is_expired(now)]
                self.expire([r for r in batch if not r.is_abandoned and r.is_expired(now)])
                if live:
                    return ScheduledBatch(requests=live, formed_time=now)

    async def _fill(self, batch: list[TTSRequest]) -> list[TTSRequest]:
        fill_deadline = batch[0].arrival_time + self.config.max_wait_ms / 1000
        while True:
            room = self.config.max_batch_size - len(batch)
            batch += self.queue.take_compatible(batch, room, self.config.max_length_ratio)
            if len(batch) >= self.config.max_batch_size:
                return batch
            remaining_s = fill_deadline - time.monotonic()
            if remaining_s <= 0:
                return batch
            await self.queue.wait_for_put(remaining_s)

    def _drop_dead(self) -> None:
        self.queue.drop_abandoned()
        self.expire(self.queue.take_expired(time.monotonic()))

    def expire(self, requests: list[TTSRequest]) -> None:
        """Fails requests whose deadline passed before compute (504); also called by workers."""
        count = fail_expired(requests, self.config.request_timeout_s)
        if count and self.on_expired is not None:
            self.on_expired(count)

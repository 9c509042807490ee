"""WorkerPool: the queue, the scheduler and one worker per device, behind `submit()`.

    pool = WorkerPool([synthesizer], BatchingConfig(max_batch_size=8), frame_rate_hz=7.5)
    async with pool.running():
        done = await pool.submit(synthesis_request)   # -> CompletedRequest (result, batch size, waits)

Owned by the app's lifespan. `submit` is called by the route handlers on the event loop; it raises
QueueFullError (503) when the queue is saturated and RequestTimeoutError (504) when the request is not done
within `request_timeout_s` of its arrival (it is then dropped before compute if it has not started).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.batching.queue import RequestQueue
from service.batching.request import TTSRequest
from service.batching.scheduler import BatchingConfig, BatchScheduler
from service.batching.worker import BatchSynthesizer, PoolObserver, PoolStats, Worker
from service.errors import NotReadyError, QueueFullError, RequestTimeoutError

if TYPE_CHECKING:
    from model.runtime.synthesizer import SynthesisRequest, SynthesisResult

logger = logging.getLogger("smalltts.batching")


@dataclass(frozen=True)
class CompletedRequest:
    """A finished synthesis and how it was served."""

    result: SynthesisResult
    batch_size: int
    queue_wait_s: float
    compute_s: float


class WorkerPool:
    """One shared queue; `workers_per_device` workers for each synthesizer (one synthesizer per device)."""

    def __init__(
        self,
        synthesizers: Sequence[BatchSynthesizer],
        config: BatchingConfig,
        *,
        frame_rate_hz: float,
        workers_per_device: int = 1,
        observer: PoolObserver | None = None,
    ) -> None:
        if not synthesizers:
            raise ValueError("WorkerPool needs at least one synthesizer")
        if workers_per_device < 1:
            raise ValueError(f"workers_per_device must be >= 1, got {workers_per_device}")
        if frame_rate_hz <= 0:
            raise ValueError(f"frame_rate_hz must be > 0, got {frame_rate_hz}")
        self.config = config
        self.frame_rate_hz = frame_rate_hz
        self.stats = PoolStats()
        self.observer = observer
        self.queue = RequestQueue(config.max_queue_size)
        self.scheduler = BatchScheduler(self.queue, config, on_expired=self._count_expired)
        self.workers = [
            Worker(f"worker-{d}.{w}", synthesizer, self.scheduler, self.stats, observer)
            for d, synthesizer in enumerate(synthesizers)
            for w in range(workers_per_device)
        ]
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def is_running(self) -> bool:
        return bool(self._tasks) and not any(t.done() for t in self._tasks)

    @property
    def queue_depth(self) -> int:
        return len(self.queue)

    @property
    def is_saturated(self) -> bool:
        return self.queue.is_full

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[WorkerPool]:
        """Starts the workers; on exit stops them and fails whatever still waits (503)."""
        self._tasks = [asyncio.create_task(w.run(), name=w.name) for w in self.workers]
        for task in self._tasks:
            task.add_done_callback(_log_worker_exit)
        try:
            yield self
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
            for request in self.queue.drain():
                if not request.future.done():
                    request.future.set_exception(NotReadyError("the server is shutting down"))

    def _count_expired(self, count: int) -> None:
        self.stats.requests_expired += count
        if self.observer is not None:
            self.observer.on_expired(count)

    def retry_after_s(self) -> float:
        """A rough wait until the queue has room: queued batches times the recent batch time."""
        mean_batch_s = self.stats.compute_s_total / self.stats.batches_run if self.stats.batches_run else 1.0
        batches_ahead = math.ceil(self.queue_depth / self.config.max_batch_size)
        return max(1.0, batches_ahead * mean_batch_s / len(self.workers))

    async def submit(self, synthesis: SynthesisRequest, *, arrival_time: float | None = None) -> CompletedRequest:
        """Queues one synthesis and waits for its batch.

        `arrival_time` (monotonic; default now) is when the HTTP request arrived: the timeout counts from it, so
        time spent decoding the upload counts too. Queue wait and the batch fill window count from now.
        """
        if not self.is_running:
            raise NotReadyError("the worker pool is not running")
        queued = time.monotonic()
        request = TTSRequest(
            synthesis=synthesis,
            num_frames=max(1, math.ceil(synthesis.duration_s * self.frame_rate_hz)),
            batch_key=(synthesis.num_steps, synthesis.timestep_table),
            arrival_time=queued,
            deadline=(arrival_time if arrival_time is not None else queued) + self.config.request_timeout_s,
            future=asyncio.get_running_loop().create_future(),
        )
        self.stats.requests_submitted += 1
        if not self.queue.try_put(request):
            self.stats.requests_rejected += 1
            if self.observer is not None:
                self.observer.on_rejected("queue_full")
            raise QueueFullError(
                f"the request queue is full (max_queue_size={self.config.max_queue_size}); retry later",
                retry_after_s=self.retry_after_s(),
            )
        remaining_s = request.deadline - time.monotonic()
        try:
            done, _ = await asyncio.wait({request.future}, timeout=max(0.0, remaining_s))
        finally:
            # Timed out or the client went away: cancelling marks it abandoned, so it is dropped before compute.
            if not request.future.done():
                request.future.cancel()
        if not done:
            if self.observer is not None:
                self.observer.on_rejected("timeout")
            raise RequestTimeoutError(
                f"not finished within request_timeout_s={self.config.request_timeout_s:g} s; the server is busy"
            )
        result = request.future.result()  # re-raises what the worker or the scheduler set
        return CompletedRequest(
            result=result, batch_size=request.batch_size, queue_wait_s=request.queue_wait_s, compute_s=request.compute_s
        )


def _log_worker_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("%s stopped", task.get_name(), exc_info=task.exception())

"""Worker: takes batches from the scheduler and runs them on one synthesizer, off the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import anyio

from model.errors import InputError
from service.batching.request import TTSRequest
from service.batching.scheduler import BatchScheduler
from service.errors import NotReadyError

if TYPE_CHECKING:
    from model.runtime.synthesizer import SynthesisRequest, SynthesisResult

logger = logging.getLogger("smalltts.batching")


class BatchSynthesizer(Protocol):
    """What a worker needs from `model.runtime.Synthesizer` (and what `FakeSynthesizer` fakes)."""

    def synthesize_batch(self, requests: Sequence[SynthesisRequest]) -> list[SynthesisResult]: ...


class PoolObserver(Protocol):
    """Told about every batch and every request dropped before compute (the metrics implement it)."""

    def on_batch(self, batch_size: int, compute_s: float) -> None: ...

    def on_expired(self, count: int) -> None: ...

    def on_rejected(self, reason: str) -> None: ...


@dataclass
class PoolStats:
    """Counters kept by the pool and its workers; read by tests, /ready and the benchmark."""

    requests_submitted: int = 0
    requests_rejected: int = 0
    requests_completed: int = 0
    requests_failed: int = 0
    requests_expired: int = 0
    batches_run: int = 0
    batch_sizes: Counter[int] = field(default_factory=Counter)
    compute_s_total: float = 0.0

    @property
    def mean_batch_size(self) -> float:
        return sum(size * n for size, n in self.batch_sizes.items()) / max(1, self.batches_run)


class Worker:
    """One inference loop over one synthesizer; several may share a synthesizer or a device."""

    def __init__(
        self,
        name: str,
        synthesizer: BatchSynthesizer,
        scheduler: BatchScheduler,
        stats: PoolStats,
        observer: PoolObserver | None = None,
    ) -> None:
        self.name = name
        self.synthesizer = synthesizer
        self.scheduler = scheduler
        self.stats = stats
        self.observer = observer
        # Its own thread token: inference never waits behind request parsing in the shared thread pool.
        self._limiter = anyio.CapacityLimiter(1)

    async def run(self) -> None:
        """Runs until cancelled (by `WorkerPool.running` on shutdown)."""
        while True:
            batch = await self.scheduler.next_batch()
            await self.run_batch(batch.requests)

    async def run_batch(self, requests: list[TTSRequest]) -> None:
        """Computes `requests` in one `synthesize_batch` call and resolves their futures."""
        now = time.monotonic()
        # The last check before compute: an expired request is never computed.
        self.scheduler.expire([r for r in requests if not r.is_abandoned and r.is_expired(now)])
        live = [r for r in requests if not r.is_abandoned]
        if not live:
            return
        for request in live:
            request.started_time = now
            request.batch_size = len(live)
        syntheses = [r.synthesis for r in live]
        try:
            results = await anyio.to_thread.run_sync(
                self.synthesizer.synthesize_batch, syntheses, limiter=self._limiter
            )
        except asyncio.CancelledError:
            # Shutdown while computing: the callers must not wait forever for a result that will never come.
            self._fail(live, NotReadyError("the server is shutting down"))
            raise
        except InputError as exc:
            if len(live) > 1:
                # One request's input broke the batch: retry one by one so only that request fails.
                for request in live:
                    await self.run_batch([request])
                return
            self._fail(live, exc)
            return
        except Exception as exc:  # a bug in inference must reach the waiting handlers, not kill the worker
            logger.exception("%s: synthesize_batch failed for a batch of %d", self.name, len(live))
            self._fail(live, exc)
            return
        finished = time.monotonic()
        if len(results) != len(live):
            self._fail(live, RuntimeError(f"synthesize_batch returned {len(results)} results for {len(live)}"))
            return
        for request, result in zip(live, results, strict=True):
            request.finished_time = finished
            if not request.future.done():  # its handler may have timed out meanwhile
                request.future.set_result(result)
        self.stats.batches_run += 1
        self.stats.batch_sizes[len(live)] += 1
        self.stats.requests_completed += len(live)
        self.stats.compute_s_total += finished - now
        if self.observer is not None:
            self.observer.on_batch(len(live), finished - now)

    def _fail(self, requests: list[TTSRequest], exc: BaseException) -> None:
        for request in requests:
            request.finished_time = time.monotonic()
            if not request.future.done():
                request.future.set_exception(exc)
        self.stats.requests_failed += len(requests)

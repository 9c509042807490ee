"""TTSRequest: one synthesis waiting in the queue, from `WorkerPool.submit` until its batch has run."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model.runtime.synthesizer import SynthesisRequest, SynthesisResult

_ids = itertools.count(1)


@dataclass(eq=False)
class TTSRequest:
    """Created on the event loop by `WorkerPool.submit`; resolved by a `Worker` (result or exception).

    Times are `time.monotonic()` seconds. `batch_key` groups requests that may share a model call (same
    sampler steps and timestep table); `num_frames` is what length bucketing compares.
    """

    synthesis: SynthesisRequest
    num_frames: int
    batch_key: Hashable
    arrival_time: float
    deadline: float
    future: asyncio.Future[SynthesisResult]
    request_id: int = field(default_factory=lambda: next(_ids))
    started_time: float | None = None  # when its batch started computing
    finished_time: float | None = None
    batch_size: int = 0

    def is_expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) >= self.deadline

    @property
    def is_abandoned(self) -> bool:
        """The waiting handler gave up (timeout or client gone) or the request was already failed."""
        return self.future.done()

    @property
    def queue_wait_s(self) -> float:
        end = self.started_time if self.started_time is not None else time.monotonic()
        return max(0.0, end - self.arrival_time)

    @property
    def compute_s(self) -> float:
        if self.started_time is None or self.finished_time is None:
            return 0.0
        return self.finished_time - self.started_time

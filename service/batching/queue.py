"""RequestQueue: the bounded FCFS queue between the HTTP handlers and the batch scheduler.

Everything here runs on the event loop (no locks needed): handlers call `try_put`, the scheduler (one
collector at a time) calls `pop_oldest`, `take_compatible` and `wait_for_put`.
"""

from __future__ import annotations

import asyncio
from collections import deque

from service.batching.request import TTSRequest


class RequestQueue:
    """Requests in arrival order, at most `max_size` of them waiting."""

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        self.max_size = max_size
        self._items: deque[TTSRequest] = deque()
        self._put_event = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def is_full(self) -> bool:
        return len(self._items) >= self.max_size

    def try_put(self, request: TTSRequest) -> bool:
        """Appends `request` unless the queue is full; called by `WorkerPool.submit`."""
        self.drop_abandoned()  # handlers that gave up must not keep others out
        if self.is_full:
            return False
        self._items.append(request)
        self._put_event.set()
        return True

    def pop_oldest(self) -> TTSRequest | None:
        return self._items.popleft() if self._items else None

    def take_compatible(self, batch: list[TTSRequest], limit: int, max_length_ratio: float) -> list[TTSRequest]:
        """Removes and returns up to `limit` waiting requests that may join `batch`, oldest first.

        A request may join when it has the same batch key and the batch's longest and shortest frame counts
        (with it) stay within `max_length_ratio`: a short request never pays for a long one's padding.
        """
        if limit <= 0 or not batch:
            return []
        key = batch[0].batch_key
        shortest = min(r.num_frames for r in batch)
        longest = max(r.num_frames for r in batch)
        taken: list[TTSRequest] = []
        kept: deque[TTSRequest] = deque()
        for request in self._items:
            low, high = min(shortest, request.num_frames), max(longest, request.num_frames)
            if len(taken) < limit and request.batch_key == key and high <= max_length_ratio * low:
                taken.append(request)
                shortest, longest = low, high
            else:
                kept.append(request)
        self._items = kept
        return taken

    def drop_abandoned(self) -> int:
        """Forgets requests whose handler already gave up; returns how many."""
        before = len(self._items)
        if any(r.is_abandoned for r in self._items):
            self._items = deque(r for r in self._items if not r.is_abandoned)
        return before - len(self._items)

    def take_expired(self, now: float) -> list[TTSRequest]:
        """Removes and returns the waiting requests whose deadline has passed."""
        expired = [r for r in self._items if r.is_expired(now)]
        if expired:
            self._items = deque(r for r in self._items if not r.is_expired(now))
        return expired

    def drain(self) -> list[TTSRequest]:
        """Removes and returns everything (shutdown)."""
        items, self._items = list(self._items), deque()
        return items

    async def wait_for_put(self, timeout_s: float | None) -> bool:
        """Waits until something is put (True) or `timeout_s` passes (False)."""
        self._put_event.clear()
        try:
            await asyncio.wait_for(self._put_event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

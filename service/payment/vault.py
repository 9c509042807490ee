"""Audio kept for payments whose settlement outcome was not known when the request ended.

When the settlement transaction is not confirmed in time, the money may still move. The audio it paid for
is then kept here (bounded in count and bytes, and only until the authorization's validBefore plus a grace,
after which it can no longer settle) and handed out when the same payment header comes back and the chain
shows the payment settled. Keyed on (payer, nonce) and the digest of the header as received, so only the
holder of that very header gets the audio. In memory, per process: a restart loses the audio, not the money
(reconciliation still records it).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from service.payment.ledger import payment_key

KEEP_AFTER_VALID_BEFORE_S = 120  # the grace reconciliation also allows for block timestamps, plus margin


def header_digest(header: str) -> str:
    return hashlib.sha256(header.strip().encode("latin-1", "replace")).hexdigest()


@dataclass(frozen=True)
class HeldAnswer:
    digest: str
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    expires_at: float


class AudioVault:
    """Held answers by (payer, nonce); the oldest go first beyond `max_entries` or `max_bytes`."""

    def __init__(
        self, max_entries: int = 256, max_bytes: int = 256 * 1024 * 1024, clock: Callable[[], float] = time.time
    ):
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._held: OrderedDict[tuple[str, str], HeldAnswer] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._held)

    def hold(
        self,
        payer: str,
        nonce: str,
        digest: str,
        answer: tuple[int, list[tuple[bytes, bytes]], bytes],
        valid_before: int,
    ) -> None:
        status, headers, body = answer
        if len(body) > self._max_bytes:
            return
        held = HeldAnswer(digest, status, headers, body, expires_at=valid_before + KEEP_AFTER_VALID_BEFORE_S)
        with self._lock:
            self._drop(payment_key(payer, nonce))
            self._held[payment_key(payer, nonce)] = held
            self._bytes += len(body)
            self._expire()
            while len(self._held) > self._max_entries or self._bytes > self._max_bytes:
                self._drop(next(iter(self._held)))

    def get(self, payer: str, nonce: str, digest: str) -> HeldAnswer | None:
        """The answer held for this payment, if `digest` is that of the header it was paid with."""
        with self._lock:
            self._expire()
            held = self._held.get(payment_key(payer, nonce))
        return held if held is not None and held.digest == digest else None

    def has(self, payer: str, nonce: str) -> bool:
        with self._lock:
            self._expire()
            return payment_key(payer, nonce) in self._held

    def discard(self, payer: str, nonce: str) -> None:
        with self._lock:
            self._drop(payment_key(payer, nonce))

    def _drop(self, key: tuple[str, str]) -> None:
        held = self._held.pop(key, None)
        if held is not None:
            self._bytes -= len(held.body)

    def _expire(self) -> None:
        now = self._clock()
        for key in [key for key, held in self._held.items() if held.expires_at <= now]:
            self._drop(key)

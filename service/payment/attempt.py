"""The paid request as the payment code sees it, and how its blocking calls leave the event loop.

    PaymentAttempt      created by the edge middleware, filled by the facilitator adapter
    current_attempt     the attempt of the request being handled (a ContextVar)
    run_in_thread       a blocking call (web3, ledger) in a worker thread of the payment pool

Payment calls get their own bounded thread limiter, so that a slow RPC or a flood of payment attempts
cannot take the threads that the ledger of other requests, espeak-ng and the audio decoding need.
"""

from __future__ import annotations

import asyncio
import functools
import re
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
from x402.schemas import SettleResponse

from service.payment.authorization import Authorization

T = TypeVar("T")

PAYMENT_THREADS = 16  # default size of the payment thread pool (SMALLTTS_PAYMENT__MAX_THREADS)


@dataclass
class PaymentAttempt:
    """One paid request, shared by the edge middleware (which creates it) and the adapter (which fills it)."""

    request_id: str
    route: str
    duration_s: str
    protocol: int  # x402 version of the client's payload: 1 or 2
    legacy_header: bool = False  # it came in X-PAYMENT: answer X-PAYMENT-RESPONSE too
    reserved: tuple[str, str] | None = None  # (payer, nonce) once verified and held
    settle_started: bool = False
    settle_sent: bool = False  # the inner facilitator was asked to settle: a transaction may exist from here on
    unavailable: str | None = None  # why the payment machinery failed (our words only): the request gets 503
    settlement: SettleResponse | None = None  # the outcome of this request's settlement, once known
    reject_message: str | None = None  # a human explanation of a 402 reason, for the response body
    retry_after_s: float | None = None  # set when a rate limit refused the attempt: the request gets 429
    header_digest: str | None = None  # sha256 of the payment header as received, to recognise it again
    authorization: Authorization | None = None  # the payment header's authorization, once its shape is checked
    captured: tuple[int, list[tuple[bytes, bytes]], bytes] | None = None  # the handler's answer, before settle

    def note_unavailable(self, message: str) -> None:
        if self.unavailable is None:
            self.unavailable = message


current_attempt: ContextVar[PaymentAttempt | None] = ContextVar("smalltts_payment_attempt", default=None)

# One limiter per event loop: a limiter's waiters belong to the loop that created it (tests run many loops).
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = weakref.WeakKeyDictionary()
_limiter_size = PAYMENT_THREADS


def set_payment_threads(size: int) -> None:
    """Size of the payment thread pool, for limiters created from now on (the service sets it at startup)."""
    global _limiter_size
    if size < 1:
        raise ValueError(f"the payment thread pool needs at least one thread, got {size}")
    _limiter_size = size
    _limiters.clear()


def _payment_limiter() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(_limiter_size)
    return limiter


def _run_with_attempt(attempt: PaymentAttempt | None, fn: Callable[..., T], *args: Any) -> T:
    # Worker threads do not inherit the caller's context reliably: install the attempt explicitly.
    token = current_attempt.set(attempt)
    try:
        return fn(*args)
    finally:
        current_attempt.reset(token)


async def run_in_thread(fn: Callable[..., T], *args: Any, abandon_on_cancel: bool = False, **kwargs: Any) -> T:
    """Run a blocking call in a payment worker thread, with the current PaymentAttempt visible inside it.

    `abandon_on_cancel=True` lets a timeout return at once while the thread finishes on its own (for chain
    calls, whose outcome reconciliation recovers); ledger writes keep the default and always complete.
    """
    call = functools.partial(fn, *args, **kwargs)
    return await anyio.to_thread.run_sync(
        _run_with_attempt,
        current_attempt.get(),
        call,
        abandon_on_cancel=abandon_on_cancel,
        limiter=_payment_limiter(),
    )


_URL_RE = re.compile(r"(\w+://[^/\s?#]+)[^\s'\"]*")


def redact(text: str, *urls: str) -> str:
    """`text` with every URL cut to scheme and host: RPC and facilitator URLs often carry API keys.

    The path and query of each of `urls` are also cut where they stand alone: HTTP libraries quote them without
    the host (requests: "url: /v2/KEY")."""
    for url in urls:
        parts = urlsplit(url)
        tail = url[len(f"{parts.scheme}://{parts.netloc}") :]
        if tail.strip("/?#"):
            text = text.replace(tail, "/…")
    return _URL_RE.sub(r"\1/…", text)

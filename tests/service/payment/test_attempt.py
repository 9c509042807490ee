from __future__ import annotations

import asyncio
import threading
import time

import anyio
import pytest

from service.payment.attempt import PAYMENT_THREADS, redact, run_in_thread, set_payment_threads

pytestmark = pytest.mark.anyio


async def test_payment_calls_run_on_their_own_bounded_thread_pool() -> None:
    running, peak = 0, 0
    lock = threading.Lock()

    def blocking() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    set_payment_threads(2)
    try:
        default_before = anyio.to_thread.current_default_thread_limiter().borrowed_tokens
        await asyncio.gather(*(run_in_thread(blocking) for _ in range(6)))
    finally:
        set_payment_threads(PAYMENT_THREADS)
    assert peak == 2  # bounded by the payment pool's size
    assert default_before == anyio.to_thread.current_default_thread_limiter().borrowed_tokens == 0


def test_redact_cuts_every_url_to_scheme_and_host() -> None:
    text = "RPC https://base-mainnet.example/v2/SECRET-KEY?x=1 failed; retry wss://node.example:8546/ws/KEY2 later"
    assert redact(text) == "RPC https://base-mainnet.example/… failed; retry wss://node.example:8546/… later"
    assert redact("no url here") == "no url here"

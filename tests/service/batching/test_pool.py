from __future__ import annotations

import asyncio
import threading

import anyio
import pytest

from model.errors import InputError
from service.batching.pool import WorkerPool
from service.batching.scheduler import BatchingConfig
from service.errors import NotReadyError, QueueFullError, RequestTimeoutError
from tests.service.batching.fakes import FRAME_RATE_HZ, FakeSynthesizer, request

pytestmark = pytest.mark.anyio


def pool_of(fake: FakeSynthesizer, **config: float) -> WorkerPool:
    return WorkerPool([fake], BatchingConfig(**config), frame_rate_hz=FRAME_RATE_HZ)  # type: ignore[arg-type]


async def test_concurrent_requests_share_model_calls() -> None:
    fake = FakeSynthesizer()
    pool = pool_of(fake, max_batch_size=8, max_wait_ms=200)
    async with pool.running():
        done = await asyncio.gather(*(pool.submit(request(seed=i)) for i in range(8)))
    assert [d.result.seed for d in done] == list(range(8))  # each caller gets its own result
    assert sum(fake.batch_sizes) == 8
    assert len(fake.batches) < 8
    assert pool.stats.batches_run == len(fake.batches)
    assert pool.stats.requests_completed == 8
    assert max(d.batch_size for d in done) > 1


async def test_max_batch_size_one_runs_one_by_one() -> None:
    fake = FakeSynthesizer()
    pool = pool_of(fake, max_batch_size=1, max_wait_ms=50)
    async with pool.running():
        await asyncio.gather(*(pool.submit(request(seed=i)) for i in range(4)))
    assert fake.batch_sizes == [1, 1, 1, 1]


async def test_results_have_the_requested_length() -> None:
    fake = FakeSynthesizer()
    pool = pool_of(fake, max_batch_size=4, max_wait_ms=50)
    async with pool.running():
        short, long = await asyncio.gather(pool.submit(request(1.0, seed=1)), pool.submit(request(3.0, seed=2)))
    assert short.result.num_frames == 8 and long.result.num_frames == 23


async def test_queue_full_raises_with_retry_after() -> None:
    fake = FakeSynthesizer(blocking=True)
    pool = pool_of(fake, max_batch_size=1, max_wait_ms=0, max_queue_size=1)
    async with pool.running():
        busy = asyncio.create_task(pool.submit(request(seed=1)))
        await anyio.to_thread.run_sync(fake.entered.wait, 10)  # the worker holds request 1
        queued = asyncio.create_task(pool.submit(request(seed=2)))
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFullError) as caught:
            await pool.submit(request(seed=3))
        assert caught.value.status_code == 503
        assert int(caught.value.headers["Retry-After"]) >= 1
        fake.gate.set()
        await asyncio.gather(busy, queued)
    assert pool.stats.requests_rejected == 1


async def test_timeout_raises_and_the_request_is_never_computed() -> None:
    fake = FakeSynthesizer(blocking=True)
    pool = pool_of(fake, max_batch_size=1, max_wait_ms=0, request_timeout_s=0.3)
    async with pool.running():
        busy = asyncio.create_task(pool.submit(request(seed=1)))
        await anyio.to_thread.run_sync(fake.entered.wait, 10)
        with pytest.raises(RequestTimeoutError) as caught:
            await pool.submit(request(seed=2))  # waits behind the blocked worker past its deadline
        assert caught.value.status_code == 504
        fake.gate.set()
        with pytest.raises(RequestTimeoutError):
            await busy  # its result came too late as well
        after = await pool.submit(request(seed=3))
    assert after.result.seed == 3
    assert fake.batches == [[1], [3]]  # seed 2 was dropped before compute


async def test_an_input_error_fails_only_its_own_request() -> None:
    fake = FakeSynthesizer(fail_seed=2)
    pool = pool_of(fake, max_batch_size=4, max_wait_ms=200)
    async with pool.running():
        outcomes = await asyncio.gather(*(pool.submit(request(seed=i)) for i in range(1, 5)), return_exceptions=True)
    assert isinstance(outcomes[1], InputError)
    assert [o.result.seed for o in outcomes if not isinstance(o, BaseException)] == [1, 3, 4]


async def test_a_crash_reaches_the_callers_and_the_worker_survives() -> None:
    fake = FakeSynthesizer(crash=True)
    pool = pool_of(fake, max_batch_size=2, max_wait_ms=0)
    async with pool.running():
        with pytest.raises(RuntimeError, match="boom"):
            await pool.submit(request(seed=1))
        fake.crash = False
        done = await pool.submit(request(seed=2))
        assert pool.is_running
    assert done.result.seed == 2
    assert pool.stats.requests_failed == 1


async def test_submit_before_start_is_not_ready() -> None:
    pool = pool_of(FakeSynthesizer())
    with pytest.raises(NotReadyError):
        await pool.submit(request())


async def test_shutdown_fails_waiting_and_running_requests() -> None:
    fake = FakeSynthesizer(blocking=True)
    pool = pool_of(fake, max_batch_size=1, max_wait_ms=0)
    async with pool.running():
        busy = asyncio.create_task(pool.submit(request(seed=1)))
        await anyio.to_thread.run_sync(fake.entered.wait, 10)
        waiting = asyncio.create_task(pool.submit(request(seed=2)))
        await asyncio.sleep(0.01)
        # Shutdown waits for the running thread; release it shortly after shutdown has begun.
        threading.Timer(0.2, fake.gate.set).start()
    results = await asyncio.gather(busy, waiting, return_exceptions=True)
    assert all(isinstance(r, NotReadyError) for r in results)
    assert fake.batches == [[1]]


async def test_one_worker_per_device_share_the_queue() -> None:
    fakes = [FakeSynthesizer(), FakeSynthesizer()]
    pool = WorkerPool(fakes, BatchingConfig(max_batch_size=2, max_wait_ms=0), frame_rate_hz=FRAME_RATE_HZ)
    assert [w.name for w in pool.workers] == ["worker-0.0", "worker-1.0"]
    async with pool.running():
        await asyncio.gather(*(pool.submit(request(seed=i)) for i in range(6)))
    assert sum(sum(f.batch_sizes) for f in fakes) == 6


def test_pool_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="synthesizer"):
        WorkerPool([], BatchingConfig(), frame_rate_hz=7.5)
    with pytest.raises(ValueError, match="frame_rate_hz"):
        WorkerPool([FakeSynthesizer()], BatchingConfig(), frame_rate_hz=0)

from __future__ import annotations

import threading

import numpy as np

from model.runtime.cache import LruCache, content_key


def test_the_least_recently_used_value_goes_first_when_bytes_run_out() -> None:
    cache: LruCache[np.ndarray] = LruCache(300, lambda a: a.nbytes)
    for key in "abc":
        cache.put(key, np.zeros(100, np.uint8))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("d", np.zeros(100, np.uint8))
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 3
    assert cache.num_bytes == 300


def test_a_value_larger_than_the_cache_is_not_kept_and_a_key_replaced_is_counted_once() -> None:
    cache: LruCache[np.ndarray] = LruCache(100, lambda a: a.nbytes)
    cache.put("big", np.zeros(101, np.uint8))
    assert cache.get("big") is None and cache.num_bytes == 0
    cache.put("x", np.zeros(60, np.uint8))
    cache.put("x", np.zeros(40, np.uint8))
    assert cache.num_bytes == 40
    cache.clear()
    assert len(cache) == 0 and cache.num_bytes == 0


def test_concurrent_puts_keep_the_byte_count_exact() -> None:
    cache: LruCache[np.ndarray] = LruCache(1000, lambda a: a.nbytes)

    def fill(offset: int) -> None:
        for i in range(200):
            cache.put(f"{offset}-{i % 30}", np.zeros(10 + i % 7, np.uint8))

    threads = [threading.Thread(target=fill, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.num_bytes <= 1000
    assert cache.num_bytes == sum(value.nbytes for value in cache._items.values())


def test_content_key_sees_dtype_shape_and_bytes() -> None:
    a = np.arange(6, dtype=np.float32)
    assert content_key(a) == content_key(a.copy())
    assert content_key(a) != content_key(a.reshape(2, 3))
    assert content_key(a) != content_key(a.astype(np.float64))
    b = a.copy()
    b[0] = 1e-9
    assert content_key(a) != content_key(b)

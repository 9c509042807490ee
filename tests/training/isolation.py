"""Per-test isolation for tests that train: one torch thread, a fresh accelerate state. Autouse wherever a
conftest imports them (tests/training, tests/smalltts/cli)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    # The tiny models are far too small to gain from threads; on busy shared cores extra threads only spin.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def fresh_accelerator_state() -> Iterator[None]:
    # accelerate keeps one process-wide state and refuses a second Accelerator with another mixed precision. A CLI
    # run trains one model per process; the tests train several (bf16 teachers on a CPU with bf16 units, the fp32
    # vocoder), so each starts from a clean state, as accelerate's own test case does.
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)

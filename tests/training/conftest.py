"""The training tests need torch and accelerate, and each runs isolated (one thread, fresh accelerate state). The
shared fixtures (corpus, shards, trainer runs) are the plugin tests/training/fixtures.py."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("accelerate")

from tests.training.isolation import fresh_accelerator_state, one_torch_thread

__all__ = ["fresh_accelerator_state", "one_torch_thread"]

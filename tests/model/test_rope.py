from __future__ import annotations

import math

import numpy as np
import pytest

from model.rope import rope_angles


def test_rope_angles_layout_matches_spec() -> None:
    rope = rope_angles(5, 64)
    assert rope.shape == (1, 5, 64)
    assert rope.dtype == np.float32
    # Every angle is written into two adjacent channels.
    np.testing.assert_array_equal(rope[..., 0::2], rope[..., 1::2])
    inv_freq = np.array([1.0 / 10000 ** (2 * i / 64) for i in range(32)])
    for p in range(5):
        np.testing.assert_allclose(rope[0, p, 0::2], p * inv_freq, rtol=1e-6)
    assert rope[0, 0].max() == 0.0
    assert rope[0, 3, 0] == 3.0


def test_rope_angles_theta_and_dim() -> None:
    rope = rope_angles(2, 4, theta=100.0)
    np.testing.assert_allclose(rope[0, 1], [1.0, 1.0, 0.1, 0.1], rtol=1e-6)
    assert rope_angles(0, 8).shape == (1, 0, 8)


@pytest.mark.parametrize("rope_dim", [0, 3, -2])
def test_rope_angles_rejects_bad_dim(rope_dim: int) -> None:
    with pytest.raises(ValueError, match="rope_dim"):
        rope_angles(4, rope_dim)


def test_rope_angles_rejects_negative_frames() -> None:
    with pytest.raises(ValueError, match="num_frames"):
        rope_angles(-1, 64)


def test_rope_angles_last_position_is_exact_in_float32() -> None:
    rope = rope_angles(4096, 64)
    assert math.isclose(float(rope[0, 4095, 0]), 4095.0)

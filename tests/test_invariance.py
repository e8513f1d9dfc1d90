"""The shift experiment: zero change at zero shift, conv equivariance, max pooling's invariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.invariance import (
    EDGE_WEIGHTS,
    SHIFT_MODES,
    edge_conv,
    invariance_experiment,
    shifted_pair,
)
from cnnlab.pooling import PoolSpec


def _smooth_image(seed: int, size: int = 48) -> np.ndarray:
    """A reproducible image with structure at several scales (blurred noise)."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 1, size, size, generator=gen)
    return F.avg_pool2d(noise, 3, 1, 1)[0, 0].numpy()


def _stripes(period: tuple[float, ...], width: int = 40, height: int = 12) -> np.ndarray:
    """Vertical stripes: every row repeats ``period`` along the columns."""
    row = np.resize(np.array(period, dtype=np.float32), width)
    return np.tile(row, (height, 1))


def test_zero_shift_changes_nothing() -> None:
    result = invariance_experiment(_smooth_image(0), PoolSpec("max", 3, 2, 1), max_shift=3)
    for curve in result.curves:
        assert curve.shifts[0] == 0
        assert curve.relative_change[0] == 0.0
        assert curve.unchanged_fraction[0] == 1.0


def test_convolution_is_equivariant_on_the_interior() -> None:
    image = _smooth_image(1)
    conv = edge_conv()
    for k in range(1, 5):
        view, shifted = shifted_pair(image, k, "right", "crop", margin=4)
        with torch.no_grad():
            a = conv(torch.from_numpy(np.ascontiguousarray(view))[None, None])[0]
            b = conv(torch.from_numpy(np.ascontiguousarray(shifted))[None, None])[0]
        # Shifting then convolving = convolving then shifting, wherever both see real pixels.
        torch.testing.assert_close(b[:, :, k:], a[:, :, :-k])
        assert not torch.allclose(b, a)  # ...but the output at the same place does change
    result = invariance_experiment(image, PoolSpec("max", 2), max_shift=4)
    conv_curve = result.curve("conv")
    assert all(v is not None and v < 1e-6 for v in conv_curve.aligned_change)
    assert all(v > 0.05 for v in conv_curve.relative_change[1:])


def test_conv_filters_are_the_documented_edge_detectors() -> None:
    weights = edge_conv().weight.detach().numpy()[:, 0]
    np.testing.assert_array_equal(weights, EDGE_WEIGHTS)
    # Sobel x responds to a vertical edge, not to a flat patch.
    step = np.zeros((5, 5), dtype=np.float32)
    step[:, 3:] = 1
    with torch.no_grad():
        response = edge_conv()(torch.from_numpy(step)[None, None])[0, 0]
    assert response.abs().max() > 0
    with torch.no_grad():
        flat = edge_conv()(torch.ones(1, 1, 5, 5))
    assert flat.abs().max() == 0


def test_max_pool_unchanged_fraction_on_constructed_stripes() -> None:
    # Columns repeat [5, 1, 0, 0]; 2-wide windows with stride 2 see [5, 1] and [0, 0].
    # Shift 1 → windows see [0, 5] and [1, 0]: max keeps 5 (half the cells unchanged), the
    # [0, 0] window becomes 1; every average changes. Shift 2 swaps the windows, shift 3 gives
    # [1, 0] and [0, 5] (both maxima change), and 4 is a whole period.
    image = _stripes((5, 1, 0, 0))
    result = invariance_experiment(image, PoolSpec("max", 2, 2), max_shift=4)
    max_curve, avg_curve = result.curve("Max"), result.curve("Average")
    assert max_curve.unchanged_fraction == pytest.approx((1.0, 0.5, 0.0, 0.0, 1.0))
    assert avg_curve.unchanged_fraction == pytest.approx((1.0, 0.0, 0.0, 0.0, 1.0))
    # Pooling is equivariant only for shifts by whole strides: k = 2 and 4, not 1 and 3.
    assert max_curve.aligned_change[1] is None
    assert max_curve.aligned_change[3] is None
    assert max_curve.aligned_change[2] == pytest.approx(0.0)
    assert max_curve.relative_change[2] > 0.5


@settings(max_examples=15, deadline=None)
@given(
    st.integers(0, 1000),
    st.sampled_from(["max", "avg", "lp"]),
    st.integers(2, 4),
    st.integers(1, 3),
    st.sampled_from(["right", "down", "diagonal"]),
)
def test_local_curves_do_not_depend_on_the_border_fill(
    seed: int, kind: str, window: int, stride: int, direction: str
) -> None:
    # On the overlap region every compared cell sees only real shifted content, so crop, roll
    # and zero fill must give the same numbers; only global pooling may differ.
    image = _smooth_image(seed, 40)
    base = PoolSpec(kind, window, stride, window // 2)
    runs = [invariance_experiment(image, base, direction=direction, mode=m) for m in SHIFT_MODES]
    for curves in zip(*(r.curves for r in runs), strict=True):
        if curves[0].kind in ("global_avg", "global_max"):
            continue
        for other in curves[1:]:
            np.testing.assert_allclose(other.relative_change, curves[0].relative_change)
            assert other.unchanged_fraction == curves[0].unchanged_fraction


def test_roll_makes_global_pooling_of_the_image_trivially_invariant() -> None:
    image = _smooth_image(3)
    rolled = invariance_experiment(image, PoolSpec("max", 2), max_shift=4, mode="roll")
    cropped = invariance_experiment(image, PoolSpec("max", 2), max_shift=4, mode="crop")
    assert max(rolled.curve("Global average").relative_change) < 1e-6
    assert max(cropped.curve("Global average").relative_change) > 1e-4


def test_shift_modes_move_content_right() -> None:
    image = np.arange(100, dtype=np.float32).reshape(10, 10)
    view, crop = shifted_pair(image, 2, "right", "crop", margin=3)
    _, roll = shifted_pair(image, 2, "right", "roll", margin=3)
    _, zeros = shifted_pair(image, 2, "right", "zeros", margin=3)
    for shifted in (crop, roll, zeros):
        np.testing.assert_array_equal(shifted[:, 2:], view[:, :-2])
    np.testing.assert_array_equal(crop[:, :2], image[3:7, 1:3])  # real pixels from outside
    np.testing.assert_array_equal(roll[:, :2], view[:, -2:])  # wrapped around
    assert not zeros[:, :2].any()


def test_experiment_refuses_bad_requests_in_words() -> None:
    with pytest.raises(ValueError, match="too small"):
        invariance_experiment(np.zeros((10, 10)), PoolSpec("max", 2), max_shift=4)
    with pytest.raises(ValueError, match="grayscale"):
        invariance_experiment(np.zeros((3, 10, 10)), PoolSpec("max", 2))
    with pytest.raises(ValueError, match="more than half the window"):
        invariance_experiment(np.zeros((40, 40)), PoolSpec("max", 2, 1, 2))
    with pytest.raises(ValueError, match="stays 8 pixels away"):
        invariance_experiment(np.zeros((22, 22)), PoolSpec("max", 3), max_shift=8)

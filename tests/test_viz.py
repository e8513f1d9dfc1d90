"""cnnlab.viz: the lookup-table colouring for big feature maps matches the exact colour maps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.viz import ColourScale, colourise, readable_aspect, scale_rgb


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_scale_rgb_matches_colourise_within_one_level(seed: int, signed: bool) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(17, 23)) * 300 + (0 if signed else 1000)
    exact, scale = colourise(values)
    fast = scale_rgb(values, scale)
    assert fast.dtype == np.uint8
    assert fast.shape == (*values.shape, 3)
    assert np.abs(fast.astype(int) - exact.astype(int)).max() <= 1


def test_diverging_zero_is_white_and_gray_scale_runs_black_to_white() -> None:
    white = scale_rgb(np.array([[0.0]]), ColourScale(-5.0, 5.0, True))
    assert white[0, 0].tolist() == [247, 247, 247]
    ramp = scale_rgb(np.array([[2.0, 7.0]]), ColourScale(2.0, 7.0, False), gray=True)
    assert ramp[0].tolist() == [[0, 0, 0], [255, 255, 255]]
    flat = scale_rgb(np.full((2, 2), 3.0), ColourScale(3.0, 3.0, False), gray=True)
    assert np.all(flat == 0)


@pytest.mark.parametrize(
    ("shape", "factor", "drawn"),
    [
        ((1, 480, 3), 120, (120, 480, 3)),  # a hairline row becomes a band 1/4 as tall
        ((480, 1), 120, (480, 120)),
        ((10, 600), 15, (150, 600)),
        ((64, 64, 3), 1, (64, 64, 3)),  # ordinary pictures are untouched
        ((30, 120), 1, (30, 120)),  # exactly 4:1
    ],
)
def test_readable_aspect_repeats_the_thin_side(shape: tuple, factor: int, drawn: tuple) -> None:
    image = np.arange(np.prod(shape)).reshape(shape)
    out, got = readable_aspect(image)
    assert got == factor
    assert out.shape == drawn
    thin_axis = 0 if shape[0] < shape[1] else 1
    # Every value survives exactly, each repeated ``factor`` times along the thin side.
    np.testing.assert_array_equal(
        np.take(out, range(0, out.shape[thin_axis], factor), thin_axis), image
    )

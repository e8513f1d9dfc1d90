"""cnnlab.conv_variants: counts, connectivity and footprints checked against built torch modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from cnnlab import conv_variants as cv


def _torch_macs(variant: str, s: cv.Sizes) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.device("meta"), torch.no_grad():
        cv.build(variant, s)(torch.empty(1, s.c_in, s.height, s.width))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("variant", cv.VARIANTS)
def test_costs_equal_torch_parameters_and_flop_counter(variant: str) -> None:
    s = cv.Sizes()
    c = cv.cost(variant, s)
    module = cv.build(variant, s)
    assert c.params == sum(p.numel() for p in module.parameters())
    assert c.macs == _torch_macs(variant, s)


@settings(max_examples=25, deadline=None)
@given(
    groups=st.sampled_from([1, 2, 4]),
    mult_in=st.integers(1, 4),
    mult_out=st.integers(1, 4),
    kernel=st.sampled_from([1, 3, 5]),
    dilation=st.integers(1, 3),
    side=st.integers(4, 12),
    variant=st.sampled_from(cv.VARIANTS),
)
def test_costs_and_shapes_for_random_sizes(
    groups: int, mult_in: int, mult_out: int, kernel: int, dilation: int, side: int, variant: str
) -> None:
    s = cv.Sizes(groups * mult_in, groups * mult_out, kernel, groups, dilation, side, side)
    c = cv.cost(variant, s)
    assert c.macs == _torch_macs(variant, s)
    out = cv.build(variant, s)(torch.randn(1, s.c_in, side, side))
    assert c.output_shape == tuple(out.shape[1:])
    expected_side = 2 * side if variant == "transposed" else side
    assert c.output_shape[1:] == (expected_side, expected_side)


def test_separable_saves_what_the_textbook_says() -> None:
    s = cv.Sizes(256, 256, 3)
    standard, separable = cv.cost("standard", s), cv.cost("separable", s)
    assert standard.weights == 256 * 256 * 9
    assert separable.weights == 256 * 9 + 256 * 256
    ratio = standard.macs / separable.macs
    assert ratio == pytest.approx(1 / (1 / 256 + 1 / 9), rel=1e-9)


@pytest.mark.parametrize("variant", cv.VARIANTS)
def test_connectivity_matrix_equals_the_modules_gradients(variant: str) -> None:
    s = cv.Sizes(8, 12, 3, 4, 2, 5, 5)
    measured = cv.measured_connectivity(cv.build(variant, s), s.c_in)
    np.testing.assert_array_equal(cv.connectivity(variant, s), measured)


def test_grouped_connectivity_is_block_diagonal() -> None:
    m = cv.connectivity("grouped", cv.Sizes(6, 6, 3, 3))
    assert m.sum() == 3 * 2 * 2
    assert m[0, :2].all()
    assert not m[0, 2:].any()


@pytest.mark.parametrize("variant", cv.VARIANTS)
@pytest.mark.parametrize(("kernel", "dilation"), [(3, 2), (5, 3), (1, 1)])
def test_footprint_equals_the_modules_gradient(variant: str, kernel: int, dilation: int) -> None:
    np.testing.assert_array_equal(
        cv.footprint(variant, kernel, dilation), cv.measured_footprint(variant, kernel, dilation)
    )


def test_bad_sizes_are_refused_in_words() -> None:
    with pytest.raises(ValueError, match="must divide both"):
        cv.cost("grouped", cv.Sizes(6, 8, 3, 4))
    with pytest.raises(ValueError, match="odd kernel"):
        cv.cost("standard", cv.Sizes(kernel=4))
    with pytest.raises(ValueError, match="Unknown variant"):
        cv.build("octave", cv.Sizes())


def _rgb(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (20, 24, 3), dtype=np.uint8)


def test_image_variants_compute_what_their_names_say() -> None:
    rgb = _rgb()
    x = torch.from_numpy(rgb.transpose(2, 0, 1).copy()).float()[None] / 255
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    depthwise = cv.apply_to_image("depthwise", rgb)
    for c in range(3):
        expected = F.conv2d(x[:, c : c + 1], sobel[None, None], padding=1)[0, 0]
        np.testing.assert_allclose(depthwise.maps[c], expected.numpy(), atol=1e-5)
    pointwise = cv.apply_to_image("pointwise", rgb).maps
    lum = 0.299 * x[0, 0] + 0.587 * x[0, 1] + 0.114 * x[0, 2]
    np.testing.assert_allclose(pointwise[0], lum.numpy(), atol=1e-5)
    standard = cv.apply_to_image("standard", rgb).maps
    gray = x[0].mean(0)[None, None]
    np.testing.assert_allclose(
        standard[0], F.conv2d(gray, sobel[None, None], padding=1)[0, 0].numpy(), atol=1e-5
    )
    up = cv.apply_to_image("transposed", rgb).maps
    assert up.shape == (3, 40, 48)
    assert cv.apply_to_image("grouped", rgb).maps.shape == (6, 20, 24)
    dilated = cv.apply_to_image("dilated", rgb, dilation=3)
    assert dilated.maps.shape == (4, 20, 24)
    assert "d=3" in dilated.names[0]


def test_one_d_convolution_slides_the_kernel() -> None:
    x = cv.signal("noisy sine", 100)
    k = cv.kernel_1d("moving average", 5)
    y = cv.conv1d(x, k)
    assert y.shape == (96,)
    np.testing.assert_allclose(y[10], x[10:15].mean())
    step = cv.conv1d(cv.signal("step", 100), cv.kernel_1d("edge detector", 5))
    assert abs(int(np.argmax(step)) + 2 - 50) <= 2  # the edge detector peaks at the step
    chirp = cv.signal("chirp", 400)
    assert np.abs(chirp).max() <= 1.0


def test_three_d_motion_kernel_fires_where_the_square_moved() -> None:
    volume = cv.moving_square(frames=4, side=16, size=4, speed=2)
    out = cv.conv3d(volume, cv.kernel_3d("motion (frame difference)"))
    assert out.shape == (3, 14, 14)
    # Output t = frame t+1 − frame t at the centre tap: +1 where the square arrived, −1 where
    # it left, 0 where nothing changed.
    expected = volume[1:, 1:-1, 1:-1] - volume[:-1, 1:-1, 1:-1]
    np.testing.assert_allclose(out, expected)
    assert cv.conv3d(volume, cv.kernel_3d("spatio-temporal blur")).shape == (2, 14, 14)


@pytest.mark.parametrize("name", cv.KERNELS_3D)
def test_every_3d_kernel_runs_and_matches_a_direct_sum(name: str) -> None:
    volume = cv.moving_square(frames=5, side=12, size=4, speed=1)
    kernel = cv.kernel_3d(name)
    out = cv.conv3d(volume, kernel)
    d, h, w = kernel.shape
    assert out.shape == (5 - d + 1, 12 - h + 1, 12 - w + 1)
    np.testing.assert_allclose(
        out[1, 2, 3], (volume[1 : 1 + d, 2 : 2 + h, 3 : 3 + w] * kernel).sum()
    )


@pytest.mark.parametrize("signal", cv.SIGNALS)
@pytest.mark.parametrize("kernel", cv.KERNELS_1D)
def test_every_1d_signal_and_kernel_matches_a_direct_sum(signal: str, kernel: str) -> None:
    x, k = cv.signal(signal, 60), cv.kernel_1d(kernel, 7)
    y = cv.conv1d(x, k)
    np.testing.assert_allclose(y[5], (x[5 : 5 + len(k)] * k).sum())

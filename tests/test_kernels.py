"""The kernel library: shapes, sums, the Gaussian formula and custom-kernel validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab import kernels
from cnnlab.kernels import (
    PRESET_NAMES,
    box_blur,
    embed,
    gaussian,
    parse_kernel_text,
    preset,
    validate_kernel,
)

EDGE_DETECTORS = (
    "Sobel x",
    "Sobel y",
    "Prewitt x",
    "Prewitt y",
    "Scharr x",
    "Scharr y",
    "Laplacian (4-neighbour)",
    "Laplacian (8-neighbour)",
    "Outline",
)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_every_preset_has_a_finite_matrix_and_a_sentence(name: str) -> None:
    kernel = preset(name)
    assert kernel.weights.dtype == np.float64
    assert kernel.weights.ndim == 2
    assert np.all(np.isfinite(kernel.weights))
    assert kernel.detects.endswith(".")
    assert len(kernel.detects.split(".")) <= 3  # one sentence (a decimal point at most)


@pytest.mark.parametrize("name", EDGE_DETECTORS)
def test_edge_detectors_sum_to_zero_so_flat_areas_give_zero(name: str) -> None:
    weights = preset(name).weights
    assert weights.sum() == 0
    flat = torch.full((1, 1, 6, 6), 137.0, dtype=torch.float64)
    out = F.conv2d(flat, torch.from_numpy(weights)[None, None])
    assert torch.all(out == 0)


@pytest.mark.parametrize("name", ["Identity", "Sharpen", "Emboss"])
def test_brightness_preserving_kernels_sum_to_one(name: str) -> None:
    assert preset(name).weights.sum() == pytest.approx(1.0)


def test_identity_copies_the_input() -> None:
    x = torch.rand(1, 1, 5, 7, dtype=torch.float64)
    out = F.conv2d(x, torch.from_numpy(preset("Identity").weights)[None, None], padding=1)
    assert torch.equal(out, x)


def test_y_detectors_are_the_x_detectors_transposed() -> None:
    for family in ("Sobel", "Prewitt", "Scharr"):
        x, y = preset(f"{family} x").weights, preset(f"{family} y").weights
        assert np.array_equal(x.T, y)


def test_sobel_x_is_positive_where_the_image_gets_brighter_to_the_right() -> None:
    step = torch.zeros(1, 1, 5, 6, dtype=torch.float64)
    step[..., 3:] = 255.0
    out = F.conv2d(step, torch.from_numpy(preset("Sobel x").weights)[None, None])
    assert out.min() == 0
    assert out.max() == 4 * 255


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 7))
def test_box_blur_sums_to_one_with_equal_weights(size: int) -> None:
    weights = box_blur(size)
    assert weights.shape == (size, size)
    assert weights.sum() == pytest.approx(1.0)
    assert np.all(weights == weights[0, 0])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 7), st.floats(0.3, 5.0))
def test_gaussian_matches_the_formula(size: int, sigma: float) -> None:
    weights = gaussian(size, sigma)
    assert weights.sum() == pytest.approx(1.0)
    centre = (size - 1) / 2
    corner = 2 * centre**2  # squared distance of cell (0, 0) from the centre
    for r in range(size):
        for c in range(size):
            d2 = (r - centre) ** 2 + (c - centre) ** 2
            # Ratios to the corner weight cancel the normalisation constant.
            expected = math.exp(-(d2 - corner) / (2 * sigma**2))
            assert weights[r, c] / weights[0, 0] == pytest.approx(expected, rel=1e-12)
    assert np.allclose(weights, weights.T)
    assert np.allclose(weights, weights[::-1, ::-1])


@pytest.mark.parametrize("bad", [0, 8, -1])
def test_blur_sizes_outside_one_to_seven_are_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="size"):
        box_blur(bad)
    with pytest.raises(ValueError, match="size"):
        gaussian(bad, 1.0)


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf")])
def test_gaussian_needs_a_positive_sigma(sigma: float) -> None:
    with pytest.raises(ValueError, match="sigma"):
        gaussian(3, sigma)


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(ValueError, match="no preset"):
        preset("Blurrr")


def test_asymmetric_example_differs_from_its_rotation() -> None:
    weights = preset(kernels.ASYMMETRIC_EXAMPLE).weights
    assert not np.array_equal(weights, weights[::-1, ::-1])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([[1.0, float("nan")]], r"row 1, column 2\) is empty or not a number"),
        ([[1.0], [float("inf")]], r"row 2, column 1\) is infinite"),
        ([[1.0, -float("inf")]], "infinite"),
        ([[None, 1.0]], "empty or not a number|not a number"),
        ([["abc"]], "not a number"),
        ([[1.0, 2.0], [3.0]], "rectangle|2-D"),
        (np.zeros((8, 8)), "1×1 to 7×7"),
        (np.zeros((0, 3)), "1×1 to 7×7"),
        ([1.0, 2.0], "2-D"),
    ],
)
def test_invalid_custom_kernels_name_the_problem(values: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_kernel(values)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 7), st.integers(1, 7), st.data())
def test_valid_custom_kernels_come_back_unchanged(rows: int, cols: int, data) -> None:
    values = data.draw(
        st.lists(
            st.lists(st.floats(-1e6, 1e6), min_size=cols, max_size=cols),
            min_size=rows,
            max_size=rows,
        )
    )
    out = validate_kernel(values)
    assert out.dtype == np.float64
    assert np.array_equal(out, np.array(values))


def test_kernel_text_accepts_fractions_commas_and_semicolons() -> None:
    out = parse_kernel_text("1/9, 1/9\n -2 0.5; 3 4")
    assert np.array_equal(out, np.array([[1 / 9, 1 / 9], [-2, 0.5], [3, 4]]))


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("1 2; 3", "same number of cells"), ("1 x", "not a number"),
     ("1/0", "not a number"), ("nan 1", "NaN"), ("inf", "infinite")],
)  # fmt: skip
def test_kernel_text_errors_are_readable(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_kernel_text(text)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([1, 3, 5, 7]), st.sampled_from([1, 3, 5, 7]))
def test_embedding_an_odd_kernel_keeps_its_effect_under_same_padding(k: int, size: int) -> None:
    # A kernel centred in a larger zero matrix gives the same 'same'-padded output.
    weights = torch.rand(k, k, dtype=torch.float64).numpy()
    x = torch.rand(1, 1, 9, 9, dtype=torch.float64)
    big = embed(weights, max(k, size), max(k, size))
    small = F.conv2d(x, torch.from_numpy(weights)[None, None], padding="same")
    large = F.conv2d(x, torch.from_numpy(big)[None, None], padding="same")
    assert torch.allclose(small, large)
    assert big.sum() == pytest.approx(weights.sum())


def test_embedding_into_a_smaller_matrix_keeps_the_centre() -> None:
    weights = np.arange(25, dtype=np.float64).reshape(5, 5)
    assert np.array_equal(embed(weights, 3, 3), weights[1:4, 1:4])
    assert np.array_equal(embed(weights, 1, 1), [[12.0]])

"""The convolution engine against PyTorch: shapes, padding modes, flip, errors, the arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from cnnlab.conv import (
    PADDING_MODES,
    ConvSettings,
    Term,
    arrange_filters,
    busiest_patch,
    check_settings,
    conv2d,
    format_number,
    output_shape,
    parameter_counts,
    reference_conv2d,
    source_index,
    sum_of_products,
    to_channels,
    window_at,
)
from cnnlab.kernels import ASYMMETRIC_EXAMPLE, preset

# The oracle's nn.Conv2d(padding="same") warns that even kernels need an extra padded copy.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def torch_oracle(x, weight, bias, s: ConvSettings, groups: int) -> np.ndarray:
    """What ``nn.Conv2d`` computes for these settings (raises whatever torch raises)."""
    weight = np.asarray(weight, dtype=np.float64)
    if s.flip:
        weight = weight[..., ::-1, ::-1]
    out_c, _, kh, kw = weight.shape
    layer = torch.nn.Conv2d(
        x.shape[0], out_c, (kh, kw), stride=s.stride,
        padding=s.padding if isinstance(s.padding, str) else int(s.padding),
        dilation=s.dilation, groups=groups, bias=bias is not None, padding_mode=s.padding_mode,
        dtype=torch.float64,
    )  # fmt: skip
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight.copy()))
        if bias is not None:
            layer.bias.copy_(torch.from_numpy(np.asarray(bias, dtype=np.float64)))
        out = layer(torch.from_numpy(x)[None])
        if s.relu:
            out = F.relu(out)
    return out[0].numpy()


@st.composite
def cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    in_c = groups * draw(st.integers(1, 2))
    out_c = groups * draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["valid", "same", 0, 1, 2, 3, 5]))
    s = ConvSettings(
        stride=stride,
        padding=padding,
        padding_mode=draw(st.sampled_from(PADDING_MODES)),
        dilation=draw(st.integers(1, 3)),
        flip=draw(st.booleans()),
        relu=draw(st.booleans()),
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Whole pixel values, like the page's 0–255 images; weights are arbitrary reals.
    x = rng.integers(0, 256, size=(in_c, h, w)).astype(np.float64)
    weight = rng.normal(size=(out_c, in_c // groups, kh, kw))
    bias = rng.normal(size=out_c) if draw(st.booleans()) else None
    return x, weight, bias, s, groups


def torch_result(x, weight, bias, s, groups):
    try:
        return torch_oracle(x, weight, bias, s, groups)
    except (RuntimeError, ValueError):
        return None


@settings(max_examples=300, deadline=None)
@given(cases())
def test_engine_and_reference_agree_with_torch_or_fail_exactly_when_torch_fails(case) -> None:
    x, weight, bias, s, groups = case
    expected = torch_result(x, weight, bias, s, groups)
    if expected is None:
        # Every refusal is a sentence about the input, kernel, padding, stride or dilation.
        words = "input|kernel|[Pp]adding|stride|dilation"
        with pytest.raises(ValueError, match=words):
            conv2d(x, weight, bias, s, groups)
        with pytest.raises(ValueError, match=words):
            reference_conv2d(x, weight, bias, s, groups)
        return
    out = conv2d(x, weight, bias, s, groups)
    assert out.shape == expected.shape
    assert out.shape[1:] == output_shape(x.shape[1:], weight.shape[2:], s)
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(reference_conv2d(x, weight, bias, s, groups), expected, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(cases())
def test_check_settings_raises_exactly_when_torch_refuses(case) -> None:
    x, weight, bias, s, groups = case
    refused = torch_result(x, weight, bias, s, groups) is None
    try:
        check_settings(x.shape[1:], weight.shape[2:], s)
    except ValueError:
        assert refused
    else:
        assert not refused


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(0, 6), st.sampled_from(PADDING_MODES[1:]))
def test_source_index_matches_what_f_pad_puts_in_the_border(n: int, pad: int, mode: str) -> None:
    line = torch.arange(n, dtype=torch.float64)[None, None]
    try:
        padded = F.pad(line, (pad, pad), mode=mode)[0, 0]
    except RuntimeError:
        return  # too much padding for this mode; check_settings refuses it (tested above)
    for position, value in enumerate(padded.tolist()):
        assert source_index(position - pad, n, mode) == value


def test_zero_padding_cells_have_no_source() -> None:
    assert source_index(-1, 5, "zeros") is None
    assert source_index(5, 5, "zeros") is None
    assert source_index(2, 5, "zeros") == 2


def test_true_convolution_is_correlation_with_the_rotated_kernel() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(1, 8, 9)).astype(np.float64)
    k = preset(ASYMMETRIC_EXAMPLE).weights[None, None]
    flipped = conv2d(x, k, settings=ConvSettings(padding=2, flip=True))
    rotated = conv2d(x, k[..., ::-1, ::-1].copy(), settings=ConvSettings(padding=2))
    plain = conv2d(x, k, settings=ConvSettings(padding=2))
    assert np.array_equal(flipped, rotated)
    assert not np.allclose(flipped, plain)


def test_true_convolution_follows_the_textbook_definition() -> None:
    # (I * K)(i, j) = Σ_m Σ_n I(i − m, j − n) · K(m, n), with K's centre at (0, 0) and zeros
    # outside the image: written straight from the definition, independent of the engine.
    rng = np.random.default_rng(1)
    image = rng.integers(0, 10, size=(6, 7)).astype(np.float64)
    kernel = rng.normal(size=(3, 3))
    expected = np.zeros_like(image)
    for i in range(6):
        for j in range(7):
            for m in range(-1, 2):
                for n in range(-1, 2):
                    if 0 <= i - m < 6 and 0 <= j - n < 7:
                        expected[i, j] += image[i - m, j - n] * kernel[m + 1, n + 1]
    out = conv2d(image[None], kernel[None, None], settings=ConvSettings(padding=1, flip=True))
    np.testing.assert_allclose(out[0], expected, atol=1e-12)


def test_convolving_an_impulse_draws_the_kernel_and_correlating_draws_it_rotated() -> None:
    impulse = np.zeros((1, 9, 9))
    impulse[0, 4, 4] = 1.0
    k = preset(ASYMMETRIC_EXAMPLE).weights
    conv = conv2d(impulse, k[None, None], settings=ConvSettings(padding="same", flip=True))
    corr = conv2d(impulse, k[None, None], settings=ConvSettings(padding="same"))
    assert np.array_equal(conv[0, 2:7, 2:7], k)
    assert np.array_equal(corr[0, 2:7, 2:7], k[::-1, ::-1])


def test_a_three_channel_filter_is_three_kernels_summed_plus_bias() -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(3, 6, 6)).astype(np.float64)
    w = rng.normal(size=(1, 3, 3, 3))
    together = conv2d(x, w, np.array([0.5]))
    apart = sum(conv2d(x[c : c + 1], w[:, c : c + 1]) for c in range(3)) + 0.5
    np.testing.assert_allclose(together, apart, atol=1e-9)


def test_depthwise_gives_one_map_per_channel() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(3, 6, 6)).astype(np.float64)
    k = preset("Sobel x").weights
    out = conv2d(x, np.stack([k[None]] * 3), groups=3)
    for c in range(3):
        np.testing.assert_array_equal(out[c], conv2d(x[c : c + 1], k[None, None])[0])


@pytest.mark.parametrize(
    ("hw", "khw", "s", "message"),
    [
        ((3, 3), (5, 5), ConvSettings(), "larger than the padded input"),
        ((3, 3), (3, 3), ConvSettings(dilation=2), "with dilation 2 it spans 5×5"),
        ((5, 5), (3, 3), ConvSettings(padding="same", stride=2), "stride 1"),
        ((3, 3), (3, 3), ConvSettings(padding=3, padding_mode="reflect"), "Reflect padding"),
        ((3, 3), (3, 3), ConvSettings(padding=4, padding_mode="circular"), "more than once"),
        ((5, 5), (3, 3), ConvSettings(stride=0), "stride"),
        ((5, 5), (3, 3), ConvSettings(dilation=0), "dilation"),
        ((5, 5), (3, 3), ConvSettings(padding=-1), "Padding"),
        ((5, 5), (3, 3), ConvSettings(padding="full"), "Padding"),
        ((5, 5), (3, 3), ConvSettings(padding_mode="mirror"), "padding mode"),
    ],
)
def test_invalid_settings_explain_themselves(hw, khw, s, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_settings(hw, khw, s)


def test_nan_or_inf_in_weights_or_bias_is_refused() -> None:
    x = np.zeros((1, 4, 4))
    with pytest.raises(ValueError, match="NaN or infinity"):
        conv2d(x, np.array([[[[1.0, np.nan]]]]))
    with pytest.raises(ValueError, match="bias"):
        conv2d(x, np.ones((1, 1, 1, 1)), np.array([np.inf]))


def test_window_lists_padded_cells_with_the_value_the_mode_puts_there() -> None:
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    k = np.arange(9, dtype=np.float64).reshape(3, 3)
    expected_corner = {
        "zeros": [0, 0, 0, 0, 1, 2, 0, 4, 5],
        "reflect": [5, 4, 5, 2, 1, 2, 5, 4, 5],
        "replicate": [1, 1, 2, 1, 1, 2, 4, 4, 5],
        "circular": [9, 7, 8, 3, 1, 2, 6, 4, 5],
    }
    for mode, values in expected_corner.items():
        s = ConvSettings(padding=1, padding_mode=mode)
        window = window_at(x, k, s, 0, 0)
        assert [t.value for t in window.terms] == values
        assert [t.padded for t in window.terms] == [True] * 4 + [False, False, True] + [False] * 2
        assert window.total == conv2d(x[None], k[None, None], settings=s)[0, 0, 0]


@settings(max_examples=60, deadline=None)
@given(cases(), st.data())
def test_every_window_sum_is_the_feature_map_value(case, data) -> None:
    x, weight, _, s, _ = case
    s = ConvSettings(s.stride, s.padding, s.padding_mode, s.dilation, s.flip)
    channel, kernel = x[0], weight[0, 0]
    try:
        out = conv2d(channel[None], kernel[None, None], settings=s)[0]
    except ValueError:
        return
    i = data.draw(st.integers(0, out.shape[0] - 1))
    j = data.draw(st.integers(0, out.shape[1] - 1))
    window = window_at(channel, kernel, s, i, j)
    assert window.total == pytest.approx(out[i, j], abs=1e-9)
    assert len(window.terms) == kernel.size


def test_window_outside_the_map_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the 2×2 feature map"):
        window_at(np.zeros((3, 3)), np.ones((2, 2)), ConvSettings(), 2, 0)


def test_sum_of_products_writes_every_term_as_computed() -> None:
    terms = (
        Term(0, 0, 1.0, 3.0, (0, 0)),
        Term(0, 1, 0.0, 5.0, (0, 1)),
        Term(1, 0, -1.0, 7.0, (1, 0)),
        Term(1, 1, 2.0, 1.0, (1, 1)),
    )
    assert sum_of_products(terms, -2.0) == "1·3 + 0·5 + (−1)·7 + 2·1 = −2"


def test_sum_of_products_says_approximately_when_digits_are_rounded() -> None:
    terms = (Term(0, 0, 1 / 9, 9.0, (0, 0)),)
    assert sum_of_products(terms, 1.0) == "0.111111·9 ≈ 1"


@pytest.mark.parametrize(
    ("value", "text"),
    [(12.0, "12"), (-0.5, "−0.5"), (-0.0, "0"), (1 / 3, "0.333333"), (255.0, "255"),
     (1e-9, "1×10^−9"), (1234567.0, "1.23457×10^6")],
)  # fmt: skip
def test_format_number_is_compact(value: float, text: str) -> None:
    assert format_number(value) == text


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 3), st.integers(1, 4), st.integers(3, 8), st.integers(3, 8),
    st.integers(1, 3), st.integers(1, 3),
)  # fmt: skip
def test_parameter_counts_match_torch_layers(c, o, h, w, kh, kw) -> None:
    conv = torch.nn.Conv2d(c, o, (kh, kw))
    ho, wo = h - kh + 1, w - kw + 1
    counts = parameter_counts((c, h, w), (o, ho, wo), (kh, kw))
    assert counts.convolution == sum(p.numel() for p in conv.parameters())
    dense = torch.nn.Linear(c * h * w, o * ho * wo)
    assert counts.fully_connected == sum(p.numel() for p in dense.parameters())
    # A locally connected layer: one weight per (output, window cell) plus one bias per output.
    windows = F.unfold(torch.zeros(1, c, h, w), (kh, kw)).shape
    assert counts.locally_connected == o * windows[2] * windows[1] + o * ho * wo


def test_depthwise_parameter_count_matches_torch() -> None:
    conv = torch.nn.Conv2d(3, 3, 3, groups=3)
    counts = parameter_counts((3, 10, 10), (3, 8, 8), (3, 3), groups=3)
    assert counts.convolution == sum(p.numel() for p in conv.parameters())


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_gray_conversion_matches_pillow(h: int, w: int, seed: int) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb, "RGB").convert("L"), dtype=np.float64)
    np.testing.assert_array_equal(to_channels(rgb, gray=True)[0], expected)
    np.testing.assert_array_equal(to_channels(rgb, gray=False), rgb.transpose(2, 0, 1))


def test_gray_input_in_colour_repeats_the_channel() -> None:
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert to_channels(gray, gray=False).shape == (3, 2, 3)
    assert np.array_equal(to_channels(gray, gray=True)[0], gray)
    with pytest.raises(ValueError, match="image"):
        to_channels(np.zeros((2, 2, 4), dtype=np.uint8), gray=True)


def test_arrange_filters_builds_the_four_layouts() -> None:
    k = preset("Sobel x").weights
    gray = arrange_filters("gray", [k])
    assert gray.weight.shape == (1, 1, 3, 3)
    assert gray.gray
    assert gray.groups == 1
    depthwise = arrange_filters("depthwise", [k])
    assert depthwise.weight.shape == (3, 1, 3, 3)
    assert depthwise.groups == 3
    assert not depthwise.gray
    multi = arrange_filters("multichannel", [k], channel_weights=(1.0, 0.0, -1.0))
    assert multi.weight.shape == (1, 3, 3, 3)
    assert np.array_equal(multi.weight[0, 2], -k)
    bank = arrange_filters("bank", [k, preset("Gaussian blur", 5).weights], ["a", "b"])
    assert bank.weight.shape == (2, 1, 5, 5)
    assert bank.labels == ("a", "b")
    assert np.array_equal(bank.weight[0, 0, 1:4, 1:4], k)
    assert bank.weight[0, 0].sum() == k.sum()


@pytest.mark.parametrize(
    ("layout", "kernels", "weights", "message"),
    [
        ("spiral", [np.ones((3, 3))], (1.0, 1.0, 1.0), "Unknown filter layout"),
        ("bank", [], (1.0, 1.0, 1.0), "at least one kernel"),
        ("multichannel", [np.ones((3, 3))], (1.0, float("nan"), 1.0), "channel weight"),
    ],
)
def test_arrange_filters_refuses_nonsense(layout, kernels, weights, message) -> None:
    with pytest.raises(ValueError, match=message):
        arrange_filters(layout, kernels, channel_weights=weights)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 3), st.integers(1, 12), st.integers(1, 12), st.integers(1, 8),
    st.integers(0, 2**32 - 1), st.sampled_from([2, 4, 256]),
)  # fmt: skip
def test_busiest_patch_is_the_most_varied_crop(c, h, w, side, seed, levels) -> None:
    # Few grey levels make many crops tie: then the one nearest the centre must win.
    x = np.random.default_rng(seed).integers(0, levels, size=(c, h, w)).astype(np.uint8)
    top, left = busiest_patch(x, side)
    k = min(side, h, w)
    gray = x.astype(np.float64).mean(axis=0)
    spread = {
        (i, j): gray[i : i + k, j : j + k].var() for i in range(h - k + 1) for j in range(w - k + 1)
    }
    best = max(spread.values())
    assert spread[(top, left)] == pytest.approx(best, abs=1e-9)
    centre = ((h - k) / 2, (w - k) / 2)
    ties = [p for p, v in spread.items() if v >= best - 1e-9]
    distance = min((i - centre[0]) ** 2 + (j - centre[1]) ** 2 for i, j in ties)
    assert (top - centre[0]) ** 2 + (left - centre[1]) ** 2 == distance


def test_a_uniform_image_starts_its_crop_in_the_middle() -> None:
    assert busiest_patch(np.full((1, 20, 30), 7, dtype=np.uint8), 7) == (6, 11)


def test_the_busiest_patch_finds_the_one_edge_in_a_flat_image() -> None:
    x = np.zeros((1, 64, 64), dtype=np.uint8)
    x[0, 40:, 10:] = 255  # a corner at row 40, column 10
    top, left = busiest_patch(x, 5)
    crop = x[0, top : top + 5, left : left + 5]
    assert 0 < (crop == 255).sum() < 25  # the crop sits on the edge
    # Half bright, half dark varies most, and only crops at the corner can split 12/13 of 25.
    assert abs(top + 2 - 40) <= 2
    assert abs(left + 2 - 10) <= 2

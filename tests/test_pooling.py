"""The pooling engine against PyTorch: values, selected maxima, validation, parameter counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.pooling import (
    KINDS,
    PaddedLPPool2d,
    PoolSpec,
    check_spec,
    compare_heads,
    max_pool2d_with_indices,
    output_size,
    parameter_count,
    pool2d,
    pool_module,
    reference_pool2d,
    spec_for_kind,
)


def _torch_raw(x: torch.Tensor, spec: PoolSpec) -> torch.Tensor:
    """Call torch's functional pools directly with the raw settings (no engine validation)."""
    k, s, p, d = spec.kernel_hw, spec.stride_hw, spec.padding_hw, spec.dilation_hw
    if spec.kind == "max":
        return F.max_pool2d(x, k, s, p, d, spec.ceil_mode)
    if spec.kind == "avg":
        return F.avg_pool2d(x, k, s, p, spec.ceil_mode, spec.count_include_pad)
    if spec.kind == "lp" and p == (0, 0):
        return F.lp_pool2d(x, spec.norm_type, k, s, spec.ceil_mode)
    if spec.kind == "lp":
        return PaddedLPPool2d(spec.norm_type, k, s, p, spec.ceil_mode)(x)
    if spec.kind == "global_avg":
        return F.adaptive_avg_pool2d(x, 1)
    return F.adaptive_max_pool2d(x, 1)


@st.composite
def specs_and_inputs(draw: st.DrawFn, kinds: tuple[str, ...] = KINDS) -> tuple:
    """A pooling spec (sometimes invalid: padding past half, window past the input) and a
    small input with few distinct values, so ties are frequent."""
    kind = draw(st.sampled_from(kinds))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = tuple(draw(st.integers(0, k // 2 + 1)) for k in kernel)
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if kind == "max" else (1, 1)
    spec = PoolSpec(
        kind=kind,
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=draw(st.booleans()),
        count_include_pad=draw(st.booleans()) if kind == "avg" else True,
        norm_type=float(draw(st.sampled_from([1, 2, 3]))) if kind == "lp" else 2.0,
    )
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    values = draw(st.lists(st.integers(0, 4), min_size=height * width, max_size=height * width))
    x = np.array(values, dtype=np.float64).reshape(height, width)
    return spec, x


@settings(max_examples=400, deadline=None)
@given(specs_and_inputs())
def test_validation_refuses_exactly_when_torch_does(case: tuple) -> None:
    spec, x = case
    try:
        expected = _torch_raw(torch.from_numpy(x)[None, None], spec)
    except RuntimeError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError, match=r"\."):
            check_spec(spec, *x.shape)
    else:
        assert check_spec(spec, *x.shape) == tuple(expected.shape[-2:])


@settings(max_examples=400, deadline=None)
@given(specs_and_inputs())
def test_reference_matches_torch_values(case: tuple) -> None:
    spec, x = case
    try:
        check_spec(spec, *x.shape)
    except ValueError:
        return
    trace = reference_pool2d(x, spec)
    ours = pool2d(x, spec).numpy()
    # Max pooling copies an input value, so it must be exact; sums may round differently.
    if spec.kind in ("max", "global_max"):
        np.testing.assert_array_equal(trace.output, ours)
    else:
        np.testing.assert_allclose(trace.output, ours, rtol=1e-12, atol=1e-12)
    assert len(trace.steps) == ours.size


@settings(max_examples=400, deadline=None)
@given(specs_and_inputs(kinds=("max", "global_max")))
def test_reference_selects_the_same_maximum_as_torch_on_ties(case: tuple) -> None:
    # Inputs take only 5 distinct values, so most windows hold tied maxima: torch's CPU kernel
    # keeps the first maximum in row-major order and the reference must pick the same one.
    spec, x = case
    try:
        check_spec(spec, *x.shape)
    except ValueError:
        return
    trace = reference_pool2d(x, spec)
    _, indices = max_pool2d_with_indices(x, spec)
    width = x.shape[1]
    for step, index in zip(trace.steps, indices.flatten().tolist(), strict=True):
        if step.argmax is None:  # a dilated window that only hit padding: torch gives −∞
            assert step.result == float("-inf")
            continue
        assert step.argmax[0] * width + step.argmax[1] == index


def test_first_maximum_wins_a_tie() -> None:
    x = np.array([[0, 3, 3], [3, 0, 0], [3, 3, 3]], dtype=np.float64)
    trace = reference_pool2d(x, PoolSpec("max", 3))
    assert trace.steps[0].argmax == (0, 1)
    assert max_pool2d_with_indices(x, PoolSpec("max", 3))[1].item() == 1


@settings(max_examples=60, deadline=None)
@given(specs_and_inputs(), st.integers(1, 3))
def test_pool2d_matches_torch_on_float32_channels(case: tuple, channels: int) -> None:
    spec, x = case
    try:
        check_spec(spec, *x.shape)
    except ValueError:
        return
    rng = np.random.default_rng(0)
    batch = rng.random((2, channels, *x.shape)).astype(np.float32)
    ours = pool2d(batch, spec)
    expected = _torch_raw(torch.from_numpy(batch), spec)
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)
    assert pool2d(batch[0, 0], spec).shape == expected.shape[-2:]


def test_lp_with_padding_zero_is_torchs_lp_pool2d() -> None:
    x = torch.rand(1, 2, 7, 6)
    module = PaddedLPPool2d(2.0, (3, 2), (2, 2), (0, 0), ceil=True)
    torch.testing.assert_close(module(x), F.lp_pool2d(x, 2.0, (3, 2), (2, 2), ceil_mode=True))


def test_lp_with_padding_is_the_norm_of_the_zero_padded_window() -> None:
    x = torch.rand(1, 1, 6, 6, dtype=torch.float64)
    ours = pool2d(x, PoolSpec("lp", 3, 3, 1))
    padded = F.pad(x, (1, 1, 1, 1))
    expected = F.lp_pool2d(padded, 2.0, 3, 3)
    torch.testing.assert_close(ours, expected)


def test_lp_ceil_mode_partial_window_is_rescaled_like_torch() -> None:
    # A 1-element corner window of ones: the L2 norm is 1, but torch scales the mean of x² by
    # the full 4-cell window area, giving 2. The reference reproduces it and says so.
    x = np.ones((3, 3))
    spec = PoolSpec("lp", 2, 2, ceil_mode=True)
    trace = reference_pool2d(x, spec)
    assert trace.output[1, 1] == pytest.approx(2.0)
    assert F.lp_pool2d(torch.ones(1, 1, 3, 3), 2, 2, 2, ceil_mode=True)[0, 0, 1, 1] == 2.0
    assert "partial window" in trace.steps[-1].expression


def test_window_details_for_the_step_view() -> None:
    x = np.arange(16, dtype=np.float64).reshape(4, 4)
    trace = reference_pool2d(x, PoolSpec("avg", 3, 2, 1, count_include_pad=True))
    first = trace.steps[0]
    assert first.rows == (-1, 0, 1)
    assert first.cols == (-1, 0, 1)
    assert first.cells == ((0, 0), (0, 1), (1, 0), (1, 1))
    assert first.values == (0.0, 1.0, 4.0, 5.0)
    assert first.divisor == 9
    assert first.padding_count == 5
    assert first.result == pytest.approx(10 / 9)
    assert first.expression.startswith("(0 + 1 + 4 + 5 + 0 + 0 + 0 + 0 + 0) / 9")
    excl = reference_pool2d(x, PoolSpec("avg", 3, 2, 1, count_include_pad=False)).steps[0]
    assert excl.divisor == 4
    assert excl.result == pytest.approx(2.5)
    dilated = reference_pool2d(x, PoolSpec("max", 2, 1, 0, dilation=2)).steps[0]
    assert dilated.cells == ((0, 0), (0, 2), (2, 0), (2, 2))
    assert dilated.argmax == (2, 2)
    assert dilated.expression == "max(0, 2, 8, 10) = 10"
    l2 = reference_pool2d(x, PoolSpec("lp", 2)).steps[0]
    assert l2.expression == "√(0² + 1² + 4² + 5²) = 6.481"


def test_dilated_window_on_padding_only_gives_minus_infinity_like_torch() -> None:
    x = np.arange(9, dtype=np.float64).reshape(3, 3)
    spec = PoolSpec("max", 2, 1, 1, dilation=4)
    trace = reference_pool2d(x, spec)
    assert trace.output[0, 0] == float("-inf")
    assert pool2d(x, spec)[0, 0].item() == float("-inf")


@pytest.mark.parametrize(
    ("spec", "shape", "message"),
    [
        (PoolSpec("max", 3, 1, 2), (5, 5), "more than half the window"),
        (PoolSpec("avg", 3, 1, 2), (5, 5), "more than half the window"),
        (PoolSpec("max", 6), (5, 5), "larger than the padded input"),
        (PoolSpec("max", 3, 1, 1, dilation=3), (2, 2), "with dilation 3, so it spans 7"),
        (PoolSpec("avg", 2, dilation=2), (5, 5), "only available for max pooling"),
        (PoolSpec("max", 2, 0), (5, 5), "stride must be at least 1"),
        (PoolSpec("lp", 2, norm_type=0.5), (5, 5), "p ≥ 1"),
        (PoolSpec("max", 2, count_include_pad=False), (5, 5), "only applies to average"),
        (PoolSpec("max", 2), (0, 5), "empty"),
    ],
)
def test_invalid_settings_have_learner_messages(spec: PoolSpec, shape: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_spec(spec, *shape)


def test_ceil_mode_can_fit_a_window_larger_than_the_input_like_torch() -> None:
    assert output_size(5, 6, 2, 0, ceil_mode=True) == 1
    assert F.max_pool2d(torch.zeros(1, 1, 5, 5), 6, 2, 0, ceil_mode=True).shape[-1] == 1
    assert output_size(5, 6, 2, 0, ceil_mode=False) == 0


def test_bad_inputs_are_refused_in_words() -> None:
    with pytest.raises(ValueError, match="NaN"):
        pool2d(np.array([[np.nan, 1.0]]), PoolSpec("max", 1))
    with pytest.raises(ValueError, match="dimensions"):
        pool2d(np.zeros(4), PoolSpec("max", 1))
    with pytest.raises(ValueError, match="Only max pooling selects"):
        max_pool2d_with_indices(np.zeros((4, 4)), PoolSpec("avg", 2))
    with pytest.raises(ValueError, match="Unknown pooling kind"):
        PoolSpec("median")


@pytest.mark.parametrize("kind", KINDS)
def test_pooling_has_no_learnable_parameters(kind: str) -> None:
    module = pool_module(PoolSpec(kind, 3, 2, 1))
    assert parameter_count(module) == 0
    assert list(module.parameters()) == []


def test_head_comparison_counts_weights_and_biases() -> None:
    heads = compare_heads(512, 7, 7, 1000)
    assert heads.flatten_fc == 512 * 7 * 7 * 1000 + 1000 == 25_089_000
    assert heads.gap_fc == 512 * 1000 + 1000 == 513_000
    assert heads.pool_params == 0
    assert heads.ratio == pytest.approx(25_089_000 / 513_000)
    with pytest.raises(ValueError, match="at least 1 class"):
        compare_heads(512, 7, 7, 0)


def test_spec_for_kind_drops_what_a_kind_cannot_take() -> None:
    base = PoolSpec("max", 3, 2, 1, dilation=2, count_include_pad=False, norm_type=3)
    assert spec_for_kind(base, "avg").dilation_hw == (1, 1)
    assert spec_for_kind(base, "avg").count_include_pad is False
    assert spec_for_kind(base, "lp").count_include_pad is True
    assert spec_for_kind(base, "max").dilation_hw == (2, 2)
    assert spec_for_kind(base, "lp").label == "L3"

"""cnnlab.arithmetic against PyTorch: every size, every refusal, the LaTeX, the coverage, the
transposed-conv rewrite, the chain calculator and the quiz.

The oracle is always the real op on a tiny zero tensor (batch 1, channel 1): a configuration is
"invalid" exactly when PyTorch raises or returns an empty tensor.
"""

from __future__ import annotations

import math
import os
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import event, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from cnnlab import arithmetic as ar

# 400 random configurations per property by default (fast); CNNLAB_ARITH_EXAMPLES=5000 for a
# thorough run.
EXAMPLES = settings(max_examples=int(os.environ.get("CNNLAB_ARITH_EXAMPLES", "400")), deadline=None)
CONV = (F.conv1d, F.conv2d, F.conv3d)
CONV_T = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)
MAX_POOL = (F.max_pool1d, F.max_pool2d, F.max_pool3d)
AVG_POOL = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)


def torch_shape(fn) -> tuple[int, ...] | None:
    """Spatial output shape of ``fn()``, or None when PyTorch refuses or the output is empty."""
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            y = fn()
    except (RuntimeError, ValueError):
        return None
    return None if y.numel() == 0 else tuple(y.shape[2:])


def engine_shape(*args, **kwargs) -> tuple[int, ...] | None:
    """The engine's answer, or None when it refuses; records how often each happens."""
    try:
        shape = ar.output_shape(*args, **kwargs)
    except ValueError:
        event("refused")
        return None
    event("valid")
    return shape


def mostly(low: int, high: int, *bad: int) -> st.SearchStrategy[int]:
    """Values in [low, high], with a few invalid ones (``bad``) mixed in at a low rate."""
    return st.sampled_from([*bad, *list(range(low, high + 1)) * 6])


@st.composite
def dims(draw, max_size: int = 12):
    """(ndim, sizes): 3-D inputs are kept smaller so every example stays cheap."""
    ndim = draw(st.integers(1, 3))
    top = max_size if ndim < 3 else 7
    return ndim, tuple(draw(mostly(1, top, 0)) for _ in range(ndim))


def per_dim(draw, ndim: int, values: st.SearchStrategy):
    """One value for all dimensions, or a tuple of one per dimension."""
    if draw(st.booleans()):
        return draw(values)
    return tuple(draw(values) for _ in range(ndim))


def pool_padding(draw, kernel, ndim: int):
    """Mostly legal pooling padding (at most kernel // 2), sometimes one too many or negative."""
    kernels = kernel if isinstance(kernel, tuple) else (kernel,) * ndim
    pads = tuple(draw(mostly(0, max(k, 0) // 2, -1, max(k, 0) // 2 + 1)) for k in kernels)
    return pads[0] if draw(st.booleans()) else pads


def zeros(sizes):
    return torch.zeros((1, 1, *sizes))


# --- sizes and refusals, against the real ops ------------------------------------------------


@EXAMPLES
@given(st.data(), dims())
def test_conv_matches_torch(data, shape):
    ndim, sizes = shape
    kernel = per_dim(data.draw, ndim, mostly(1, 5, 0))
    stride = per_dim(data.draw, ndim, mostly(1, 4, 0, -1))
    dilation = per_dim(data.draw, ndim, mostly(1, 3, 0))
    padding = data.draw(
        st.one_of(
            st.sampled_from(["same", "valid"]),
            mostly(0, 4, -1),
            st.tuples(*[mostly(0, 4, -1)] * ndim),
        )
    )
    ks = kernel if isinstance(kernel, tuple) else (kernel,) * ndim
    expected = torch_shape(
        lambda: CONV[ndim - 1](
            zeros(sizes), torch.zeros((1, 1, *ks)), None, stride, padding, dilation
        )
    )
    assert engine_shape("conv", sizes, kernel, stride, padding, dilation) == expected


@EXAMPLES
@given(st.data(), dims())
def test_asymmetric_conv_padding_is_fpad_then_conv(data, shape):
    ndim, sizes = shape
    sizes = tuple(max(n, 1) for n in sizes)
    kernel = data.draw(st.integers(1, 5))
    stride = data.draw(st.integers(1, 3))
    dilation = data.draw(st.integers(1, 3))
    pairs = tuple(data.draw(st.tuples(st.integers(0, 3), st.integers(0, 3))) for _ in sizes)
    pads = [p for pair in reversed(pairs) for p in pair]  # F.pad: last dimension first
    expected = torch_shape(
        lambda: CONV[ndim - 1](
            F.pad(zeros(sizes), pads),
            torch.zeros((1, 1, *(kernel,) * ndim)),
            None,
            stride,
            0,
            dilation,
        )
    )
    padding = pairs[0] if ndim == 1 else pairs
    assert engine_shape("conv", sizes, kernel, stride, padding, dilation) == expected


@EXAMPLES
@given(st.data(), dims())
def test_conv_transpose_matches_torch(data, shape):
    ndim, sizes = shape
    kernel = per_dim(data.draw, ndim, mostly(1, 4, 0))
    stride = per_dim(data.draw, ndim, mostly(1, 3, 0))
    dilation = per_dim(data.draw, ndim, mostly(1, 3, 0))
    padding = per_dim(data.draw, ndim, mostly(0, 3, -1))
    output_padding = per_dim(data.draw, ndim, mostly(0, 2, -1, 3))
    ks = kernel if isinstance(kernel, tuple) else (kernel,) * ndim
    expected = torch_shape(
        lambda: CONV_T[ndim - 1](
            zeros(sizes),
            torch.zeros((1, 1, *ks)),
            None,
            stride,
            padding,
            output_padding,
            1,
            dilation,
        )
    )
    got = engine_shape("conv_transpose", sizes, kernel, stride, padding, dilation, output_padding)
    assert got == expected


@EXAMPLES
@given(st.data(), dims())
def test_max_pool_matches_torch(data, shape):
    ndim, sizes = shape
    kernel = per_dim(data.draw, ndim, mostly(1, 5, 0))
    stride = data.draw(st.one_of(st.none(), mostly(1, 4, 0), st.tuples(*[mostly(1, 4)] * ndim)))
    padding = pool_padding(data.draw, kernel, ndim)
    dilation = per_dim(data.draw, ndim, mostly(1, 3, 0))
    ceil_mode = data.draw(st.booleans())
    expected = torch_shape(
        lambda: MAX_POOL[ndim - 1](zeros(sizes), kernel, stride, padding, dilation, ceil_mode)
    )
    got = engine_shape("max_pool", sizes, kernel, stride, padding, dilation, 0, ceil_mode)
    assert got == expected


@EXAMPLES
@given(st.data(), dims())
def test_avg_pool_matches_torch(data, shape):
    ndim, sizes = shape
    kernel = per_dim(data.draw, ndim, mostly(1, 5, 0))
    stride = data.draw(st.one_of(st.none(), mostly(1, 4, 0), st.tuples(*[mostly(1, 4)] * ndim)))
    padding = pool_padding(data.draw, kernel, ndim)
    ceil_mode = data.draw(st.booleans())
    expected = torch_shape(
        lambda: AVG_POOL[ndim - 1](zeros(sizes), kernel, stride, padding, ceil_mode)
    )
    assert engine_shape("avg_pool", sizes, kernel, stride, padding, 1, 0, ceil_mode) == expected


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, 40),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    padding=st.integers(0, 3),
    dilation=st.integers(1, 3),
    output_padding=st.integers(0, 3),
    ceil_mode=st.booleans(),
)
def test_per_dimension_functions_match_torch_1d(
    size, kernel, stride, padding, dilation, output_padding, ceil_mode
):
    """The three public per-dimension functions on their own, over bigger 1-D sizes."""

    def ours(fn, *args):
        try:
            return (fn(*args),)
        except ValueError:
            return None

    w = torch.zeros(1, 1, kernel)
    x = zeros((size,))
    assert ours(ar.conv_output_size, size, kernel, stride, padding, dilation) == torch_shape(
        lambda: F.conv1d(x, w, None, stride, padding, dilation)
    )
    assert ours(
        ar.conv_transpose_output_size, size, kernel, stride, padding, output_padding, dilation
    ) == torch_shape(
        lambda: F.conv_transpose1d(x, w, None, stride, padding, output_padding, 1, dilation)
    )
    assert ours(
        ar.pool_output_size, size, kernel, stride, padding, dilation, ceil_mode
    ) == torch_shape(lambda: F.max_pool1d(x, kernel, stride, padding, dilation, ceil_mode))


def test_run_torch_agrees_with_the_engine_on_the_issue_example():
    layer = ar.analyse("conv", (28, 28), 5, stride=2, padding=1)
    assert layer.output_shape == (13, 13)
    assert ar.run_torch(layer) == (13, 13)
    same = ar.analyse("conv", (7, 9, 5), (4, 3, 2), padding="same", dilation=(1, 2, 3))
    assert ar.run_torch(same) == same.output_shape == (7, 9, 5)
    asym = ar.analyse("conv", (6, 6), 3, 2, ((0, 2), (1, 0)))
    assert ar.run_torch(asym) == asym.output_shape


# --- the documented edge cases and messages ---------------------------------------------------


def test_same_padding_with_an_even_kernel_puts_the_extra_pixel_right():
    assert ar.same_padding(4) == (1, 2)
    assert ar.same_padding(3) == (1, 1)
    assert ar.same_padding(2, dilation=3) == (1, 2)
    dim = ar.analyse_dim("conv", 10, 4, padding="same")
    assert (dim.pad_left, dim.pad_right, dim.output) == (1, 2, 10)
    # PyTorch's own 'same' must agree that the right side gets the extra zero: with a kernel
    # that only reads its last tap, output[i] = padded[i + 3], i.e. x[i + 3 - left].
    x = torch.arange(1.0, 11.0).reshape(1, 1, 10)
    w = torch.tensor([[[0.0, 0.0, 0.0, 1.0]]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        y = F.conv1d(x, w, padding="same")
    expected = F.pad(x, (1, 2))[..., 3:]
    assert torch.equal(y, expected)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: ar.pool_output_size(10, 5, padding=3), "padding 3 is more than half the kernel 5"),
        (lambda: ar.conv_output_size(10, 3, 2, "same"), "'same' padding needs stride 1"),
        (lambda: ar.conv_output_size(10, 3, 0), "stride must be at least 1"),
        (lambda: ar.conv_output_size(3, 5), "larger than the padded input"),
        (lambda: ar.conv_output_size(3, 2, dilation=4), "dilation 4"),
        (lambda: ar.conv_output_size(0, 1, padding=1), "at least one pixel"),
        (lambda: ar.conv_output_size(5, 1, padding=-1), "can't be negative"),
        (lambda: ar.conv_transpose_output_size(4, 3, 2, output_padding=2), "smaller than"),
        (lambda: ar.conv_transpose_output_size(1, 1, padding=1), "crops away the whole output"),
        (lambda: ar.pool_output_size(2, 3, padding=1, dilation=2), "output would be empty"),
        (lambda: ar.output_shape("avg_pool", (2, 2, 2), 3, 3, 1), "avg_pool3d"),
        (lambda: ar.output_shape("avg_pool", (8, 8), 2, dilation=2), "no dilation"),
        (lambda: ar.output_shape("max_pool", (8,), 2, 2, (0, 1)), "only modelled for conv"),
        (lambda: ar.output_shape("conv", (8, 8), (3, 3, 3)), "3 values"),
        (lambda: ar.conv_output_size(8, 2.5), "whole number"),
    ],
)
def test_refusals_say_what_is_wrong(call, words):
    with pytest.raises(ValueError, match="(?i)" + re.escape(words)):
        call()


def test_ceil_mode_drops_a_last_window_that_would_start_in_the_right_padding():
    # 4 pixels, pad 1, kernel 2, stride 3: ⌈(4 + 2 − 1 − 1)/3⌉ + 1 = 3, but window 3 would start
    # at padded index 6 ≥ 4 + 1, so PyTorch keeps 2.
    dim = ar.analyse_dim("max_pool", 4, 2, 3, 1, ceil_mode=True)
    assert dim.ceil_dropped_last
    assert dim.output == 2 == F.max_pool1d(zeros((4,)), 2, 3, 1, ceil_mode=True).shape[-1]
    assert dim.latex().endswith(r"\right\rceil + 1 - 1 = 2")


# --- LaTeX ------------------------------------------------------------------------------------


def latex_to_python(latex: str) -> str:
    """Turn the formulas' small LaTeX vocabulary into a Python expression."""
    expr = latex.replace(r"\left\lfloor", "math.floor(").replace(r"\right\rfloor", ")")
    expr = expr.replace(r"\left\lceil", "math.ceil(").replace(r"\right\rceil", ")")
    expr = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", expr)
    return expr.replace(r"\cdot", "*")


def text_to_python(text: str) -> str:
    """Turn the plain-text formula's symbols into a Python expression."""
    for symbol, python in (("⌊", "math.floor("), ("⌈", "math.ceil("), ("⌋", ")"), ("⌉", ")")):
        text = text.replace(symbol, python)
    return text.replace("·", "*").replace("−", "-")


def test_text_of_the_readme_example():
    text = ar.analyse("conv", (28, 28), 5, stride=2, padding=1).dims[0].text()
    assert text == "⌊(28 + 2·1 − 1·(5 − 1) − 1) / 2⌋ + 1 = 13"


def test_latex_of_the_issue_example():
    latex = ar.analyse_dim("conv", 28, 5, 2, 1).latex()
    assert latex == r"\left\lfloor \frac{28 + 2\cdot1 - 1\cdot(5-1) - 1}{2} \right\rfloor + 1 = 13"


@settings(max_examples=300, deadline=None)
@given(
    op=st.sampled_from(ar.OPERATIONS),
    size=st.integers(1, 30),
    kernel=st.integers(1, 6),
    stride=st.integers(1, 4),
    padding=st.one_of(
        st.integers(0, 3), st.just("same"), st.tuples(st.integers(0, 3), st.integers(0, 3))
    ),
    dilation=st.integers(1, 3),
    output_padding=st.integers(0, 2),
    ceil_mode=st.booleans(),
)
def test_latex_and_text_have_the_numbers_and_evaluate_to_the_torch_result(
    op, size, kernel, stride, padding, dilation, output_padding, ceil_mode
):
    is_pool = op.endswith("pool")
    if op != "conv" and not isinstance(padding, int):
        padding = 1
    try:
        layer = ar.analyse(
            op,
            (size,),
            kernel,
            stride,
            padding,
            1 if op == "avg_pool" else dilation,
            output_padding if op == "conv_transpose" else 0,
            ceil_mode and is_pool,
        )
    except ValueError:
        return
    dim = layer.dims[0]
    latex = dim.latex()
    lhs, rhs = latex.rsplit("=", 1)
    assert int(rhs) == dim.output == ar.run_torch(layer)[0]
    assert eval(latex_to_python(lhs), {"math": math}) == dim.output
    text_lhs, text_rhs = dim.text().rsplit("=", 1)
    assert int(text_rhs) == dim.output
    assert eval(text_to_python(text_lhs), {"math": math}) == dim.output
    for number in (dim.size, dim.kernel, dim.stride, dim.pad_left, dim.dilation):
        assert re.search(rf"(?<!\d){number}(?!\d)", lhs), (number, latex)


# --- coverage: which pixels the windows reach -------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(1, 20),
    kernel=st.integers(1, 5),
    stride=st.integers(1, 5),
    padding=st.integers(0, 3),
    dilation=st.integers(1, 4),
)
def test_unreached_pixels_are_those_with_zero_gradient(size, kernel, stride, padding, dilation):
    """A pixel is read by some window exactly when the output's gradient reaches it."""
    try:
        dim = ar.analyse_dim("conv", size, kernel, stride, padding, dilation)
    except ValueError:
        return
    cov = ar.coverage(dim)
    x = torch.zeros(1, 1, size, requires_grad=True)
    F.conv1d(x, torch.ones(1, 1, kernel), None, stride, padding, dilation).sum().backward()
    assert cov.unreached == tuple(torch.nonzero(x.grad[0, 0] == 0).flatten().tolist())
    assert len(cov.windows) == dim.output
    assert set(cov.trailing) | set(cov.skipped) == set(cov.unreached)
    if dim.remainder == 0:
        assert cov.trailing == ()
    else:  # the last `remainder` pixels of the padded input are never reached
        last_read = max(max(w) for w in cov.windows)
        assert size + dim.pad_right - 1 - last_read == dim.remainder


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, 16),
    kernel=st.integers(1, 5),
    stride=st.integers(1, 5),
    padding=st.integers(0, 2),
    ceil_mode=st.booleans(),
)
def test_pooling_windows_match_avg_pool_gradient(size, kernel, stride, padding, ceil_mode):
    """Ceil mode's overhanging last window is clipped exactly where PyTorch clips it."""
    try:
        dim = ar.analyse_dim("avg_pool", size, kernel, stride, padding, ceil_mode=ceil_mode)
    except ValueError:
        return
    x = torch.zeros(1, 1, size, requires_grad=True)
    y = F.avg_pool1d(x, kernel, stride, padding, ceil_mode, count_include_pad=False)
    y.sum().backward()
    assert ar.coverage(dim).unreached == tuple(torch.nonzero(x.grad[0, 0] == 0).flatten().tolist())


# --- transposed convolution as a stride-1 convolution ----------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(1, 3))
def test_transposed_conv_equals_conv_over_zero_inserted_padded_input(data, ndim):
    sizes = tuple(data.draw(st.integers(1, 5 if ndim < 3 else 3)) for _ in range(ndim))
    kernel = tuple(data.draw(st.integers(1, 4)) for _ in range(ndim))
    stride = tuple(data.draw(st.integers(1, 3)) for _ in range(ndim))
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(ndim))
    padding = tuple(data.draw(st.integers(0, 3)) for _ in range(ndim))
    out_pad = tuple(
        data.draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True)
    )
    try:
        layer = ar.analyse("conv_transpose", sizes, kernel, stride, padding, dilation, out_pad)
    except ValueError:
        return
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    x = torch.randn((1, 2, *sizes), generator=gen, dtype=torch.float64)
    w = torch.randn((2, 3, *kernel), generator=gen, dtype=torch.float64)
    expected = CONV_T[ndim - 1](x, w, None, stride, padding, out_pad, 1, dilation)
    got = ar.conv_transpose_via_conv(x, w, stride, padding, out_pad, dilation)
    assert tuple(expected.shape[2:]) == layer.output_shape
    torch.testing.assert_close(got, expected)
    inp = ar.zero_insert_and_pad(x, kernel, stride, padding, out_pad, dilation)
    for axis, d in enumerate(layer.dims):
        eq = ar.transposed_as_conv(
            d.size, d.kernel, d.stride, d.pad_left, d.output_padding, d.dilation
        )
        assert inp.shape[2 + axis] == eq.conv_input_size
        assert eq.output == d.output
    if ndim == 1:  # the original samples sit exactly at source_positions, zeros elsewhere
        eq = ar.transposed_as_conv(
            sizes[0], kernel[0], stride[0], padding[0], out_pad[0], dilation[0]
        )
        positions = eq.source_positions()
        for j, p in enumerate(positions):
            if p is not None:
                assert torch.equal(inp[0, :, p], x[0, :, j])
        kept = {p for p in positions if p is not None}
        others = [i for i in range(inp.shape[-1]) if i not in kept]
        assert torch.all(inp[0, :, others] == 0)


# --- chain calculator -------------------------------------------------------------------------


def torch_macs(model, input_shape) -> int:
    """PyTorch's FLOP counter counts a multiply-accumulate as 2 FLOPs."""
    with FlopCounterMode(display=False) as counter, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model(torch.zeros((1, *input_shape)))
    return counter.get_total_flops() // 2


def run_chain(input_shape, layers):
    return ar.chain_to_torch(input_shape, layers), ar.run_chain_torch(input_shape, layers)


def test_textbook_chain_matches_nn_sequential():
    steps = ar.chain_shapes(ar.TEXTBOOK_INPUT, ar.TEXTBOOK_CHAIN)
    labels = [s.label for s in steps if s.layer.kind != "relu"]
    assert labels == ["16×32×32", "16×16×16", "32×16×16", "32×8×8", "2048", "128", "10"]
    model, shapes = run_chain(ar.TEXTBOOK_INPUT, ar.TEXTBOOK_CHAIN)
    assert [s.shape for s in steps] == shapes
    assert sum(s.params for s in steps) == sum(p.numel() for p in model.parameters())
    assert sum(s.macs for s in steps) == torch_macs(model, ar.TEXTBOOK_INPUT)
    for step, module in zip(steps, model, strict=True):
        assert step.params == sum(p.numel() for p in module.parameters())


@st.composite
def chains(draw):
    ndim = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(4, 16 if ndim < 3 else 8)) for _ in range(ndim))
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv_transpose", "max_pool", "avg_pool", "relu"]))
        kernel = draw(st.integers(1, 3))
        if kind == "conv":
            padding = draw(st.one_of(st.integers(0, 1), st.just("same")))
            stride = 1 if padding == "same" else draw(st.integers(1, 2))
            layers.append(ar.ChainLayer(kind, draw(st.integers(1, 4)), kernel, stride, padding))
        elif kind == "conv_transpose":
            layers.append(
                ar.ChainLayer(kind, draw(st.integers(1, 4)), kernel, draw(st.integers(1, 2)))
            )
        else:
            layers.append(
                ar.ChainLayer(kind, kernel=kernel, padding=draw(st.integers(0, kernel // 2)))
            )
    layers.append(ar.ChainLayer("flatten"))
    layers.append(ar.ChainLayer("linear", draw(st.integers(1, 5))))
    return (draw(st.integers(1, 3)), *spatial), layers


@settings(max_examples=60, deadline=None)
@given(chains())
def test_random_chains_match_nn_sequential(chain):
    input_shape, layers = chain
    try:
        steps = ar.chain_shapes(input_shape, layers)
    except ValueError:
        # The chain is refused at some layer: everything before it runs, and PyTorch refuses
        # that layer too (when building the module or when running it).
        good = 0
        while good < len(layers):
            try:
                ar.chain_shapes(input_shape, layers[: good + 1])
            except ValueError:
                break
            good += 1
        model, shapes = run_chain(input_shape, layers[:good])
        shape = shapes[-1] if shapes else input_shape
        with pytest.raises((RuntimeError, ValueError)):
            ar.layer_to_torch(shape, layers[good])(torch.zeros((1, *shape)))
        return
    model, shapes = run_chain(input_shape, layers)
    assert [s.shape for s in steps] == shapes
    assert sum(s.params for s in steps) == sum(p.numel() for p in model.parameters())
    assert sum(s.macs for s in steps) == torch_macs(model, input_shape)


def test_chain_errors_name_the_layer():
    layers = [ar.ChainLayer("conv", 8, 5), ar.ChainLayer("max_pool", kernel=2)] * 3
    with pytest.raises(ValueError, match=r"^Layer 5 \(conv\): Height: The kernel 5 is larger"):
        ar.chain_shapes((1, 16, 16), layers)
    with pytest.raises(ValueError, match="after a flatten"):
        ar.chain_shapes((1, 8, 8), [ar.ChainLayer("flatten"), ar.ChainLayer("conv", 2, 3)])


# --- quiz -------------------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", ar.DIFFICULTIES)
def test_quiz_is_reproducible_from_its_seed_and_answers_match_torch(difficulty):
    questions = [ar.make_question(seed, difficulty) for seed in range(40)]
    assert questions == [ar.make_question(seed, difficulty) for seed in range(40)]
    assert len({(q.op, q.size, q.kernel, q.stride, q.padding) for q in questions}) > 20
    for q in questions:
        layer = ar.analyse(
            q.op,
            (q.size, q.size),
            q.kernel,
            q.stride,
            q.padding,
            q.dilation,
            q.output_padding,
            q.ceil_mode,
        )
        assert ar.run_torch(layer) == (q.answer, q.answer)
        assert ar.check_answer(q, q.answer)
        assert not ar.check_answer(q, q.answer + 1)
        assert str(q.size) in q.prompt()
        assert q.dim().latex().endswith(f"= {q.answer}")


def test_quiz_difficulty_levels_add_features():
    easy = [ar.make_question(s, "easy") for s in range(60)]
    medium = [ar.make_question(s, "medium") for s in range(60)]
    hard = [ar.make_question(s, "hard") for s in range(60)]
    assert {q.op for q in easy} == {"conv"}
    assert all(q.dilation == 1 and not q.ceil_mode for q in easy)
    assert any(q.dilation > 1 for q in medium)
    assert not any(q.ceil_mode or q.op == "conv_transpose" for q in medium)
    assert any(q.ceil_mode for q in hard)
    assert any(q.op == "conv_transpose" for q in hard)
    with pytest.raises(ValueError, match="difficulty"):
        ar.make_question(1, "impossible")

"""Receptive-field arithmetic checked against what PyTorch networks actually do.

The oracle networks are built here, independently of ``cnnlab.receptive_field.build_module``:
padding is applied explicitly with a marker parameter, so the gradient tells whether a neuron
reads padding at any layer, without trusting the formulas under test.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

from cnnlab.receptive_field import (
    PRESETS,
    Layer,
    StackError,
    analyse_stack,
    build_module,
    centre_path,
    effective_receptive_field,
    exact_support,
    field_tree,
    neuron_region,
    neuron_support,
    receptive_fields,
    stack_from_layer_dicts,
    tree_dependencies,
)

# --- oracle networks ----------------------------------------------------------------------------


def torch_layer(layer: Layer, channels: int) -> nn.Module:
    """The real PyTorch module for a row (pools as pools), for shape and validity checks."""
    geo = {"kernel_size": layer.kernel, "stride": layer.stride, "padding": layer.padding}
    if layer.kind == "conv":
        return nn.Conv2d(channels, channels, dilation=layer.dilation, **geo)
    if layer.kind == "maxpool":
        return nn.MaxPool2d(dilation=layer.dilation, **geo)
    if layer.kind == "avgpool":
        return nn.AvgPool2d(**geo)
    return {"relu": nn.ReLU(), "batchnorm": nn.BatchNorm2d(channels)}[layer.kind]


class PositiveNet(nn.Module):
    """All-positive network with the stack's geometry and explicit, marked zero padding.

    Every window layer (max pools too: a max routes the gradient to one pixel, so it is replaced
    by a positive conv with the same window) pads its input with ``marker · 1`` where ``marker``
    is a parameter equal to 0: the value is ordinary zero padding, but ∂output/∂marker > 0
    exactly when the neuron reads a padding cell at some layer.
    """

    def __init__(self, layers: list[Layer], channels: int = 2) -> None:
        super().__init__()
        self.layers = layers
        self.marker = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.ops = nn.ModuleList()
        for i, layer in enumerate(layers):
            if layer.kind in ("conv", "maxpool"):
                c_in = 1 if i == 0 else channels
                op = nn.Conv2d(c_in, channels, layer.kernel, layer.stride, 0, layer.dilation)
                with torch.no_grad():
                    op.weight.uniform_(0.2, 1.0)
                    op.bias.fill_(0.1)
            elif layer.kind == "avgpool":
                op = nn.AvgPool2d(layer.kernel, layer.stride, 0)
            else:
                op = torch_layer(layer, channels)
            self.ops.append(op)
        self.double().eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the stack; the first conv turns 1 input channel into ``channels``."""
        for layer, op in zip(self.layers, self.ops, strict=True):
            if layer.kind in ("conv", "maxpool", "avgpool"):
                ph, pw = layer.padding
                x = F.pad(x, (pw, pw, ph, ph))
                mask = torch.ones_like(x)
                mask[..., ph : x.shape[-2] - ph, pw : x.shape[-1] - pw] = 0
                x = x + self.marker * mask
            x = op(x)
        return x


kinds = st.sampled_from(["conv", "conv", "maxpool", "avgpool", "relu", "batchnorm"])


@st.composite
def stacks(draw: st.DrawFn) -> tuple[list[Layer], tuple[int, int]]:
    """Random small stacks (valid or not) and an input size."""
    hw = (draw(st.integers(1, 20)), draw(st.integers(1, 20)))
    # Small values weighted up: most stacks run, and many neurons never touch the padding.
    small = st.sampled_from([1, 1, 1, 2, 3])
    pads = st.sampled_from([0, 0, 0, 1, 2])
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(kinds)
        pair = st.tuples
        kernel = draw(pair(st.integers(1, 4), st.integers(1, 4)))
        stride = draw(pair(small, small))
        padding = draw(pair(pads, pads))
        dilation = (1, 1) if kind == "avgpool" else draw(pair(small, small))
        layers.append(Layer(kind, kernel, stride, padding, dilation))
    return layers, hw


def _needs_conv_first(layers: list[Layer]) -> list[Layer]:
    # The oracle's first window op must turn 1 channel into 2: a leading conv does that.
    return [Layer("conv", (1, 1)), *layers]


# --- the property tests -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks())
def test_shapes_and_validity_agree_with_torch(case: tuple[list[Layer], tuple[int, int]]) -> None:
    """Every layer's output size matches PyTorch; a stack is refused exactly when torch fails."""
    layers, (h, w) = case
    x = torch.zeros(1, 2, h, w)
    try:
        fields = analyse_stack(layers, (h, w))
    except StackError as exc:
        for layer in layers[: exc.index]:  # the layers before the faulty one do run
            x = torch_layer(layer, 2).eval()(x)
        with pytest.raises(RuntimeError):
            torch_layer(layers[exc.index], 2).eval()(x)
        return
    for layer, f in zip(layers, fields, strict=True):
        x = torch_layer(layer, 2).eval()(x)
        assert tuple(x.shape[-2:]) == f.output_hw


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks())
def test_gradient_support_is_the_formula_region(case: tuple[list[Layer], tuple[int, int]]) -> None:
    """Back-propagate from every output neuron of an all-positive network.

    Neurons whose field never passes through padding: the pixels with non-zero gradient span
    exactly the formula's rows and columns (dilation leaves holes, so compare min and max).
    Every neuron: the non-zero pixels are exactly the engine's support (holes included), lie in
    the clipped region, and the engine knows whether padding was read.
    """
    layers, hw = case
    layers = _needs_conv_first(layers)
    try:
        fields = analyse_stack(layers, hw)
    except StackError:
        return
    torch.manual_seed(0)
    net = PositiveNet(layers)
    x = torch.full((1, 1, *hw), 0.5, dtype=torch.float64, requires_grad=True)
    out = net(x)[0, 0]
    oh, ow = out.shape
    assert (oh, ow) == fields[-1].output_hw
    last = len(layers) - 1
    checked_span = 0
    for r in range(oh):
        for c in range(ow):
            gx, gm = torch.autograd.grad(out[r, c], (x, net.marker), retain_graph=True)
            nonzero = (gx[0, 0] != 0).numpy()
            reads_padding = bool(gm != 0)
            region = neuron_region(fields, last, r, c)
            support, touches = neuron_support(layers, hw, last, r, c)
            assert touches == reads_padding
            np.testing.assert_array_equal(nonzero, support)
            rows, cols = np.nonzero(nonzero)
            assert rows.size > 0 or reads_padding
            if not reads_padding:
                assert (rows.min(), rows.max()) == (region.top, region.bottom)
                assert (cols.min(), cols.max()) == (region.left, region.right)
                assert region.padded_area == 0
                checked_span += 1
            elif rows.size:
                t, left, b, right = region.clipped
                assert t <= rows.min()
                assert rows.max() <= b
                assert left <= cols.min()
                assert cols.max() <= right
    event(f"some neuron checked for its exact span: {checked_span > 0}")


def test_property_test_sees_padding_free_neurons() -> None:
    """Guard: the oracle does exercise the exact-span branch on an ordinary stack."""
    layers = [Layer.make("conv", 3), Layer.make("maxpool", 2, 2), Layer.make(kernel=3, dilation=3)]
    fields = analyse_stack(layers, 24)
    net = PositiveNet(layers)
    x = torch.full((1, 1, 24, 24), 0.5, dtype=torch.float64, requires_grad=True)
    out = net(x)[0, 0]
    gx, gm = torch.autograd.grad(out[2, 3], (x, net.marker))
    rows, cols = np.nonzero(gx[0, 0].numpy())
    region = neuron_region(fields, 2, 2, 3)
    assert gm == 0
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (
        region.top,
        region.bottom,
        region.left,
        region.right,
    )
    # Dilation 3 in the last layer leaves holes inside the span.
    assert len(set(cols.tolist())) < region.width


# --- the 1-D public API -------------------------------------------------------------------------


def test_receptive_fields_1d_matches_conv1d_gradient() -> None:
    """The 1-D API against a Conv1d network: field of output n spans start ± (rf−1)/2 + n·jump."""
    specs = [
        {"kernel": 3},
        {"kernel": 2, "stride": 2, "kind": "maxpool"},
        {"kernel": 3, "padding": 1, "dilation": 2},
        {"kernel": 3, "stride": 2},
    ]
    n = 40
    result = receptive_fields(specs, n)
    assert [r["output_size"] for r in result] == [38, 19, 17, 8]
    convs = [
        nn.Conv1d(1, 1, s["kernel"], s.get("stride", 1), 0, s.get("dilation", 1)) for s in specs
    ]
    x = torch.ones(1, 1, n, dtype=torch.float64, requires_grad=True)
    for conv in convs:
        conv.double()
        nn.init.constant_(conv.weight, 1.0)
    last = result[-1]
    for m in range(last["output_size"]):
        y = x
        for s, conv in zip(specs, convs, strict=True):
            y = conv(F.pad(y, (s.get("padding", 0),) * 2))
        (g,) = torch.autograd.grad(y[0, 0, m], x)
        idx = np.nonzero(g[0, 0].numpy())[0]
        centre = last["start"] + m * last["jump"]
        half = (last["rf"] - 1) / 2
        lo, hi = max(centre - half, 0), min(centre + half, n - 1)
        assert (idx.min(), idx.max()) == (lo, hi)


def test_receptive_fields_defaults_and_half_pixel_start() -> None:
    """Defaults are kernel 1, stride 1, padding 0, dilation 1; even kernels centre on a gap."""
    assert receptive_fields([{}], 5) == [{"output_size": 5, "jump": 1, "rf": 1, "start": 0.0}]
    (even,) = receptive_fields([{"kernel": 2, "stride": 2}], 6)
    assert even["start"] == 0.5
    assert even["rf"] == 2


def test_pointwise_layers_pass_through() -> None:
    """ReLU, batch norm and dropout rows change nothing, even if their cells hold numbers."""
    plain = analyse_stack([Layer.make(kernel=3, stride=2)], 17)
    mixed = analyse_stack(
        [Layer.make("relu", kernel=5), Layer.make(kernel=3, stride=2), Layer.make("dropout")], 17
    )
    assert mixed[0].rows == mixed[0].rows.__class__(17, 17, 1, 1, 0.0, 17)
    assert (mixed[1].rows, mixed[1].cols) == (plain[0].rows, plain[0].cols)
    assert mixed[2].rows.rf == plain[0].rows.rf


# --- invalid stacks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layers", "size", "fragments"),
    [
        (
            [{"kernel": 3}, {"kind": "maxpool", "kernel": 5, "stride": 2}],
            4,
            ["Layer 2 (maxpool 5, stride 2)", "only 2 pixels", "empty", "smaller kernel"],
        ),
        ([{"kernel": 3, "stride": 0}], 8, ["Layer 1 (conv)", "stride must be at least 1"]),
        ([{"kind": "pooling"}], 8, ["Layer 1", "unknown kind 'pooling'"]),
        (
            [{"kind": "maxpool", "kernel": 2, "padding": 2}],
            8,
            ["Layer 1 (maxpool)", "padding 2", "half", "padding ≤ 1"],
        ),
        ([{"kind": "avgpool", "kernel": 2, "dilation": 2}], 8, ["no dilation"]),
        ([{"kernel": 3, "dilation": 4}], 8, ["dilated to 9"]),
        ([{"kernel": 2.5}], 8, ["Layer 1", "whole number"]),
    ],
)
def test_invalid_stacks_name_the_layer(layers: list[dict], size: int, fragments: list) -> None:
    """Messages name the 1-based layer, its kind and the reason, and PyTorch refuses too."""
    with pytest.raises(ValueError, match="Layer") as info:
        receptive_fields(layers, size)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_stack_error_points_at_the_row() -> None:
    """``StackError.index`` is the 0-based row; 2-D messages name the axis when axes differ."""
    with pytest.raises(StackError) as info:
        analyse_stack([Layer.make(kernel=3), Layer.make(kernel=(1, 9))], (10, 6))
    assert info.value.index == 1
    assert "along the width" in str(info.value)
    with pytest.raises(ValueError, match="at least 1 pixel"):
        analyse_stack([], 0)


# --- regions, paths, trees ----------------------------------------------------------------------


def test_region_clipping_at_the_border() -> None:
    """A corner neuron's span reaches into the padding; the clipped part is what the image holds."""
    fields = analyse_stack([Layer.make(kernel=5, padding=2), Layer.make(kernel=3, padding=1)], 10)
    region = neuron_region(fields, 1, 0, 9)
    assert (region.top, region.left, region.bottom, region.right) == (-3, 6, 3, 12)
    assert region.clipped == (0, 6, 3, 9)
    assert region.area == 49
    assert region.clipped_area == 4 * 4
    assert region.padded_area == 49 - 16
    assert region.padded_fraction == pytest.approx(33 / 49)
    with pytest.raises(ValueError, match="outside"):
        neuron_region(fields, 1, 10, 0)


def test_covers_input_matches_every_neuron() -> None:
    """A layer 'covers the input' exactly when every neuron's clipped field is the whole image."""
    for preset in PRESETS.values():
        fields = analyse_stack(preset.layers, preset.input_size)
        n = preset.input_size
        for i, f in enumerate(fields):
            oh, ow = f.output_hw
            brute = all(
                neuron_region(fields, i, r, c).clipped == (0, 0, n - 1, n - 1)
                for r in {0, oh - 1}
                for c in {0, ow - 1}
            )
            assert f.covers_input == brute
    lenet = analyse_stack(PRESETS["LeNet-5"].layers, 32)
    assert [f.covers_input for f in lenet] == [False] * 4 + [True]


def test_centre_path_fields_grow_and_nest() -> None:
    """Layer by layer, the centre-line neuron's field grows and stays inside the final field."""
    preset = PRESETS["AlexNet features"]
    fields = analyse_stack(preset.layers, preset.input_size)
    path = centre_path(fields, len(fields) - 1, 3, 2)
    assert len(path) == len(fields)
    assert path[-1] == (3, 2)
    regions = [neuron_region(fields, i, r, c) for i, (r, c) in enumerate(path)]
    for small, big in itertools.pairwise(regions):
        assert big.area >= small.area
        assert big.top <= small.top
        assert small.bottom <= big.bottom
        assert big.left <= small.left
        assert small.right <= big.right


def test_field_tree_edges_and_dependencies() -> None:
    """Tree edges follow the windows; dependencies reach exactly the exact support."""
    specs = [{"kernel": 3, "padding": 1}, {"kind": "maxpool", "kernel": 2, "stride": 2}]
    tree = field_tree(specs, 6)
    assert [lv.size for lv in tree] == [6, 6, 3]
    assert len(tree[1].edges) == 6 * 3
    assert (0, -1) in tree[1].edges
    assert (5, 6) in tree[1].edges
    assert tree[2].edges[:2] == ((0, 0), (0, 1))
    deps = tree_dependencies(tree, 2, 0)
    assert deps == [{-1, 0, 1, 2}, {0, 1}, {0}]
    assert exact_support(specs, 6, 1, 0) == ([0, 1, 2], True)
    assert exact_support(specs, 6, 1, 1) == ([1, 2, 3, 4], False)


# --- presets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_match_torch_shapes(name: str) -> None:
    """Every preset layer's output size is what PyTorch computes, layer by layer."""
    preset = PRESETS[name]
    fields = analyse_stack(preset.layers, preset.input_size)
    x = torch.zeros(1, 2, preset.input_size, preset.input_size)
    with torch.no_grad():
        for layer, f in zip(preset.layers, fields, strict=True):
            x = torch_layer(layer, 2)(x)
            assert tuple(x.shape[-2:]) == f.output_hw, layer.name


def test_presets_reach_published_field_sizes() -> None:
    """Final field sizes as published (Araujo et al. 2019 for AlexNet and VGG-16)."""
    final = {n: analyse_stack(p.layers, p.input_size)[-1] for n, p in PRESETS.items()}
    assert final["AlexNet features"].rows.rf == 195
    assert final["VGG-16 features"].rows.rf == 212
    assert final["ResNet-18 stem and stages"].rows.rf == 435
    assert final["LeNet-5"].output_hw == (1, 1)
    assert final["VGG-16 features"].output_hw == (7, 7)
    assert final["AlexNet features"].output_hw == (6, 6)


def test_build_module_follows_the_stack() -> None:
    """The ERF network has the stack's shapes, conv channels (capped) and a ReLU after convs."""
    preset = PRESETS["LeNet-5"]
    net = build_module(preset.layers, preset.in_channels, channel_cap=8)
    kinds_seen = [type(m).__name__ for m in net]
    assert kinds_seen[:3] == ["Conv2d", "ReLU", "AvgPool2d"]
    assert net[0].out_channels == 6
    assert net[-2].out_channels == 8
    assert net(torch.zeros(1, 1, 32, 32)).shape == (1, 8, 1, 1)
    with pytest.raises(StackError):
        build_module([Layer.make("avgpool", 2, dilation=2)])


def test_stack_from_layer_dicts_stops_at_flatten() -> None:
    """Model descriptions adapt to a stack up to the first non-spatial layer."""
    stack = stack_from_layer_dicts(
        [
            {"kind": "conv", "kernel": 3, "padding": 1, "channels": 8},
            {"kind": "relu"},
            {"kind": "maxpool", "kernel": 2, "stride": 2},
            {"kind": "flatten"},
            {"kind": "linear", "out_features": 10},
        ]
    )
    assert [layer.kind for layer in stack] == ["conv", "relu", "maxpool"]
    assert stack[0].channels == 8
    assert stack[2].stride == (2, 2)


# --- effective receptive field ------------------------------------------------------------------


def test_effective_field_sanity() -> None:
    """The ERF is zero outside the theoretical field, peaks near its centre, fills part of it."""
    layers = [Layer.make(kernel=3, padding=1) for _ in range(6)]
    erf = effective_receptive_field(layers, 21, in_channels=1, networks=4, samples=16)
    region = erf.region
    assert erf.neuron == (10, 10)
    assert (region.top, region.left, region.bottom, region.right) == (4, 4, 16, 16)
    outside = erf.gradient.copy()
    outside[4:17, 4:17] = 0
    assert not outside.any()
    assert 0 < erf.mass_share <= 1
    assert erf.mass_share < 0.9  # Gaussian-like: the 95 % mass needs fewer pixels than the square
    peak = erf.peak
    assert abs(peak[0] - 10) <= 2
    assert abs(peak[1] - 10) <= 2
    assert erf.gradient[10, 10] > 10 * erf.gradient[4, 4]
    # The 95 % count is the fewest pixels: one fewer holds less than 95 %.
    values = np.sort(erf.gradient.ravel())[::-1]
    total = values.sum()
    assert values[: erf.mass_pixels].sum() >= 0.95 * total * (1 - 1e-9)
    assert values[: erf.mass_pixels - 1].sum() < 0.95 * total


def test_effective_field_is_reproducible_and_checks_layer() -> None:
    """Same seed, same field; a layer beyond the stack is refused."""
    layers = [Layer.make(kernel=3), Layer.make("maxpool", 2, 2)]
    a = effective_receptive_field(layers, 12, samples=2, networks=1, seed=3)
    b = effective_receptive_field(layers, 12, samples=2, networks=1, seed=3)
    np.testing.assert_array_equal(a.gradient, b.gradient)
    with pytest.raises(ValueError, match="no layer 5"):
        effective_receptive_field(layers, 12, layer_index=4)


@pytest.mark.parametrize("name", list(PRESETS))
def test_same_place_is_the_neuron_centred_nearest(name: str) -> None:
    preset = PRESETS[name]
    fields = analyse_stack(preset.layers, preset.input_size)
    last = fields[-1]
    for neuron in ((0, 0), (last.output_hw[0] - 1, last.output_hw[1] // 2)):
        y, x = last.rows.centre(neuron[0]), last.cols.centre(neuron[1])
        for f in fields[:: max(1, len(fields) // 6)]:
            row, col = f.same_place(last, neuron)
            # Brute force over every neuron of the layer: none is centred nearer.
            rows = [abs(f.rows.centre(r) - y) for r in range(f.output_hw[0])]
            cols = [abs(f.cols.centre(c) - x) for c in range(f.output_hw[1])]
            assert rows[row] == min(rows)
            assert cols[col] == min(cols)
            assert f.same_place(f, (row, col)) == (row, col)  # staying on a layer moves nothing

"""Receptive fields: which input pixels can reach a neuron, and which ones actually matter.

Theory (Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks",
Distill 2019). Per spatial axis, with pixel ``i`` of the input centred at coordinate ``i`` and a
layer of kernel ``k``, stride ``s``, padding ``p`` and dilation ``d`` (effective kernel
``k_eff = d·(k − 1) + 1``) applied to the previous layer's ``jump`` ``j``, field size ``r`` and
``start`` ``c`` (centre of output 0's field)::

    output_size = ⌊(n + 2p − k_eff) / s⌋ + 1
    jump'  = j · s
    rf'    = r + (k_eff − 1) · j
    start' = c + ((k_eff − 1) / 2 − p) · j

Output ``m`` of a layer then sees input coordinates ``start + m·jump ± (rf − 1)/2``; coordinates
below 0 or above ``n − 1`` lie in the padding. Pointwise layers (ReLU, batch norm, dropout, …)
pass every quantity through unchanged.

Practice (Luo, Li, Urtasun & Zemel, "Understanding the Effective Receptive Field in Deep
Convolutional Neural Networks", NeurIPS 2016): the *effective* receptive field is the gradient
magnitude of one output neuron with respect to the input, averaged over random inputs (and random
weights). It is roughly Gaussian and fills only a fraction of the theoretical square.

Layers are numbered from 1 in every message, as on the page's table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from cnnlab.seeding import seeded

WINDOW_KINDS = ("conv", "maxpool", "avgpool")
"""Layers that slide a window: they change jump, field size and start."""
POINTWISE_KINDS = ("relu", "tanh", "sigmoid", "batchnorm", "dropout", "identity")
"""Layers that work on each pixel alone: they pass the geometry through unchanged."""
KINDS = WINDOW_KINDS + POINTWISE_KINDS

DEFAULT_CHANNELS = 16
"""Output channels of a conv layer whose row does not say (only the ERF network needs them)."""

Pair = tuple[int, int]
MAX_GEOMETRY = 1_000_000
"""Largest kernel, stride, padding, dilation or channel count a layer row may have."""


class StackError(ValueError):
    """A layer stack that cannot run; ``index`` is the 0-based position of the faulty layer."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def _pair(value: int | Sequence[int] | None, default: int, what: str) -> Pair:
    """Turn ``3`` or ``(3, 5)`` (or ``None`` / NaN: the default) into an ``(h, w)`` pair."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return (default, default)
    if isinstance(value, int | np.integer | float | np.floating):
        # Infinity, or a number no real layer has (a script can send any cell value).
        if not np.isfinite(float(value)) or abs(value) > MAX_GEOMETRY:
            raise ValueError(f"{what} must be a whole number up to {MAX_GEOMETRY:,}.")
        if float(value) != int(value):
            raise ValueError(f"{what} must be a whole number, got {value}.")
        return (int(value), int(value))
    values = tuple(value)
    if len(values) != 2:
        raise ValueError(f"{what} needs one number or a (height, width) pair, got {value!r}.")
    return (_pair(values[0], default, what)[0], _pair(values[1], default, what)[0])


@dataclass(frozen=True)
class Layer:
    """One row of a stack: its kind and window geometry as (height, width) pairs."""

    kind: str = "conv"
    kernel: Pair = (1, 1)
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    channels: int | None = None
    name: str = ""

    @classmethod
    def make(
        cls,
        kind: str = "conv",
        kernel: int | Sequence[int] | None = 1,
        stride: int | Sequence[int] | None = 1,
        padding: int | Sequence[int] | None = 0,
        dilation: int | Sequence[int] | None = 1,
        channels: int | None = None,
        name: str = "",
    ) -> Layer:
        """Build a layer from ints or pairs; ``None`` means the default (1, 1, 0, 1)."""
        kind = str(kind).strip().lower()
        if channels is not None and isinstance(channels, float) and np.isnan(channels):
            channels = None
        return cls(
            kind=kind,
            kernel=_pair(kernel, 1, "kernel"),
            stride=_pair(stride, 1, "stride"),
            padding=_pair(padding, 0, "padding"),
            dilation=_pair(dilation, 1, "dilation"),
            channels=None if channels is None else _pair(channels, 1, "channels")[0],
            name=str(name or ""),
        )

    @property
    def is_window(self) -> bool:
        """True for layers that slide a window (conv and pooling)."""
        return self.kind in WINDOW_KINDS

    @property
    def effective_kernel(self) -> Pair:
        """``d·(k − 1) + 1`` per axis: the span a dilated kernel covers."""
        if not self.is_window:
            return (1, 1)
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation, strict=True))

    def describe(self, one_d: bool = False) -> str:
        """Short label such as ``maxpool 3×3, stride 2`` (``maxpool 3, stride 2`` in 1-D)."""
        if not self.is_window:
            return self.kind

        def fmt(p: Pair, short: bool = True) -> str:
            return str(p[1]) if one_d else _fmt_pair(p, short)

        parts = [f"{self.kind} {fmt(self.kernel, short=False)}"]
        defaults = {"stride": (1, 1), "pad": (0, 0), "dilation": (1, 1)}
        values = {"stride": self.stride, "pad": self.padding, "dilation": self.dilation}
        for what, value in values.items():
            if (value[1] if one_d else value) != (defaults[what][1] if one_d else defaults[what]):
                parts.append(f"{what} {fmt(value)}")
        return ", ".join(parts)


def _fmt_pair(p: Pair, short: bool = True) -> str:
    """``2`` for a square pair when ``short``, else ``2×1``."""
    return str(p[0]) if short and p[0] == p[1] else f"{p[0]}×{p[1]}"


def as_layer(spec: Layer | Mapping) -> Layer:
    """Accept a :class:`Layer` or a dict with ``kind``/``kernel``/``stride``/``padding``/…."""
    if isinstance(spec, Layer):
        return spec
    known = {"kind", "kernel", "stride", "padding", "dilation", "channels", "name"}
    return Layer.make(**{k: v for k, v in spec.items() if k in known})


@dataclass(frozen=True)
class AxisField:
    """Receptive-field arithmetic of one layer along one axis (all in input pixels)."""

    input_size: int
    """Length of this layer's input along the axis (the previous layer's output)."""
    output_size: int
    jump: int
    rf: int
    start: float
    image_size: int
    """Length of the network's input image along the axis."""

    def span(self, index: int) -> tuple[int, int]:
        """First and last input coordinate (inclusive) that output ``index`` can see."""
        centre = self.start + index * self.jump
        half = (self.rf - 1) / 2
        return round(centre - half), round(centre + half)

    def centre(self, index: int) -> float:
        """Input coordinate of the centre of output ``index``'s field."""
        return self.start + index * self.jump

    def nearest(self, coordinate: float) -> int:
        """The output whose field is centred nearest input ``coordinate`` (ties: the lower)."""
        index = math.ceil((coordinate - self.start) / self.jump - 0.5)
        return min(max(index, 0), self.output_size - 1)

    @property
    def covers_input(self) -> bool:
        """True when every output neuron's field already contains the whole input."""
        first_of_last = self.span(self.output_size - 1)[0]
        last_of_first = self.span(0)[1]
        return first_of_last <= 0 and last_of_first >= self.image_size - 1


def _axis_step(
    index: int, layer: Layer, axis: int, prev: AxisField, axis_word: str, one_d: bool = False
) -> AxisField:
    """Apply one layer to one axis, raising :class:`StackError` when it cannot run."""
    if not layer.is_window:
        return replace(prev, input_size=prev.output_size)
    k, s, p, d = layer.kernel[axis], layer.stride[axis], layer.padding[axis], layer.dilation[axis]
    n = prev.output_size
    k_eff = d * (k - 1) + 1
    where = f"{axis_word}: " if axis_word else ""
    if 2 * p + n < k_eff:
        span = f"{n} + 2×{p} padding = {n + 2 * p}" if p else f"{n}"
        dilated = f" (dilated to {k_eff})" if d > 1 else ""
        raise StackError(
            f"{_name(index, layer, one_d)}: {where}its input is only {span} pixels, smaller "
            f"than its {k}-pixel window{dilated}, so its output would be empty. Use a smaller "
            "kernel, add padding, or remove a downsampling layer before it.",
            index,
        )
    return AxisField(
        input_size=n,
        output_size=(n + 2 * p - k_eff) // s + 1,
        jump=prev.jump * s,
        rf=prev.rf + (k_eff - 1) * prev.jump,
        start=prev.start + ((k_eff - 1) / 2 - p) * prev.jump,
        image_size=prev.image_size,
    )


def _width_only(spec: Layer | Mapping) -> Layer:
    """A 1-D layer: the width-axis geometry, with a 1-pixel window along the height."""
    layer = as_layer(spec)
    return replace(
        layer,
        kernel=(1, layer.kernel[1]),
        stride=(1, layer.stride[1]),
        padding=(0, layer.padding[1]),
        dilation=(1, layer.dilation[1]),
    )


def _name(index: int, layer: Layer, one_d: bool = False) -> str:
    return f"Layer {index + 1} ({layer.describe(one_d)})"


def _check_layer(index: int, layer: Layer) -> None:
    """Reject hyper-parameters PyTorch would refuse, with a sentence saying how to fix them."""
    if layer.kind not in KINDS:
        raise StackError(
            f"Layer {index + 1}: unknown kind {layer.kind!r}; use one of {', '.join(KINDS)}.",
            index,
        )
    if not layer.is_window:
        return
    label = f"Layer {index + 1} ({layer.kind})"
    for what, values, low in (
        ("kernel", layer.kernel, 1),
        ("stride", layer.stride, 1),
        ("padding", layer.padding, 0),
        ("dilation", layer.dilation, 1),
    ):
        if min(values) < low:
            raise StackError(
                f"{label}: {what} must be at least {low}, got {_fmt_pair(values)}.", index
            )
    if layer.kind == "conv" and layer.channels is not None and layer.channels < 1:
        raise StackError(f"{label}: a conv needs at least 1 output channel.", index)
    if layer.kind == "avgpool" and layer.dilation != (1, 1):
        raise StackError(
            f"{label}: average pooling has no dilation in PyTorch; set dilation to 1 "
            "(or use a conv with a dilated kernel).",
            index,
        )
    if layer.kind == "conv":
        return
    # PyTorch refuses pooling windows that could lie entirely in the padding (it compares with
    # the undilated kernel, for max pooling too).
    for p, w in zip(layer.padding, layer.kernel, strict=True):
        if 2 * p > w:
            raise StackError(
                f"{label}: padding {p} is more than half of its {w}-pixel window, so some "
                f"windows would hold only padding and PyTorch refuses it. Use padding ≤ {w // 2}.",
                index,
            )


@dataclass(frozen=True)
class LayerField:
    """Receptive-field arithmetic of one layer along both axes."""

    index: int
    layer: Layer
    rows: AxisField
    cols: AxisField

    @property
    def output_hw(self) -> Pair:
        """Output height and width."""
        return (self.rows.output_size, self.cols.output_size)

    @property
    def covers_input(self) -> bool:
        """True when every neuron of this layer already sees the whole input image."""
        return self.rows.covers_input and self.cols.covers_input

    def same_place(self, other: LayerField, neuron: Pair) -> Pair:
        """The neuron of this layer whose field is centred nearest that of ``other``'s
        ``neuron``: where a learner's eye stays when they switch layers."""
        row, col = neuron
        return self.rows.nearest(other.rows.centre(row)), self.cols.nearest(other.cols.centre(col))


def _size_pair(input_size: int | Sequence[int]) -> Pair:
    h, w = _pair(input_size, 1, "input size")
    if min(h, w) < 1:
        raise ValueError(f"The input must be at least 1 pixel on each side, got {h}×{w}.")
    return h, w


def analyse_stack(
    layers: Iterable[Layer | Mapping], input_size: int | Sequence[int]
) -> list[LayerField]:
    """Per-layer output size, jump, field size and start along height and width.

    Raises :class:`StackError` (a ``ValueError``) naming the first layer that cannot run.
    """
    return _analyse(layers, _size_pair(input_size), one_d=False)


def _analyse(layers: Iterable[Layer | Mapping], hw: Pair, one_d: bool) -> list[LayerField]:
    """:func:`analyse_stack`; ``one_d`` analyses the width axis only (height must be 1)."""
    h, w = hw
    rows = AxisField(h, h, 1, 1, 0.0, h)
    cols = AxisField(w, w, 1, 1, 0.0, w)
    fields: list[LayerField] = []
    for index, spec in enumerate(layers):
        try:
            layer = as_layer(spec)
        except ValueError as exc:
            raise StackError(f"Layer {index + 1}: {exc}", index) from exc
        _check_layer(index, layer)
        # Name the axis in messages only when the two axes differ.
        same = rows.output_size == cols.output_size and all(
            a == b for a, b in (layer.kernel, layer.stride, layer.padding, layer.dilation)
        )
        if one_d:
            layer = _width_only(layer)
        else:
            rows = _axis_step(index, layer, 0, rows, "" if same else "along the height")
        cols = _axis_step(index, layer, 1, cols, "" if same or one_d else "along the width", one_d)
        fields.append(LayerField(index, layer, rows, cols))
    return fields


def receptive_fields(layers: Sequence[Mapping], input_size: int) -> list[dict]:
    """One spatial axis: per layer ``output_size``, ``jump``, ``rf`` and ``start``.

    ``layers`` are dicts with ``kernel``, ``stride``, ``padding``, ``dilation`` (defaults 1, 1,
    0, 1) and optionally ``kind`` (default ``"conv"``). Output 0 of a layer sees input indices
    ``start − (rf − 1)/2 … start + (rf − 1)/2`` and output ``n`` is shifted by ``n·jump``;
    negative coordinates lie in the padding. Raises ``ValueError`` naming the faulty layer.
    """
    fields = _analyse(layers, _size_pair((1, input_size)), one_d=True)
    return [
        {
            "output_size": f.cols.output_size,
            "jump": f.cols.jump,
            "rf": f.cols.rf,
            "start": f.cols.start,
        }
        for f in fields
    ]


@dataclass(frozen=True)
class Region:
    """The input pixels one neuron can see: the full span, and the part inside the image."""

    top: int
    left: int
    bottom: int
    right: int
    image_hw: Pair
    clipped: tuple[int, int, int, int] | None = field(default=None)
    """``(top, left, bottom, right)`` of the span inside the image (inclusive), if any."""

    @property
    def height(self) -> int:
        """Rows of the full theoretical span."""
        return self.bottom - self.top + 1

    @property
    def width(self) -> int:
        """Columns of the full theoretical span."""
        return self.right - self.left + 1

    @property
    def area(self) -> int:
        """Pixels of the full span, padding included."""
        return self.height * self.width

    @property
    def clipped_area(self) -> int:
        """Pixels of the span that lie inside the image."""
        if self.clipped is None:
            return 0
        t, left, b, r = self.clipped
        return (b - t + 1) * (r - left + 1)

    @property
    def padded_area(self) -> int:
        """Pixels of the span that fall in the padding (outside the image)."""
        return self.area - self.clipped_area

    @property
    def padded_fraction(self) -> float:
        """Share of the span that falls in the padding."""
        return self.padded_area / self.area


def neuron_region(fields: Sequence[LayerField], layer_index: int, row: int, col: int) -> Region:
    """Input region of output neuron ``(row, col)`` of layer ``layer_index`` (0-based)."""
    f = fields[layer_index]
    oh, ow = f.output_hw
    if not (0 <= row < oh and 0 <= col < ow):
        raise ValueError(
            f"Layer {layer_index + 1} has a {oh}×{ow} output; neuron ({row}, {col}) is outside it."
        )
    top, bottom = f.rows.span(row)
    left, right = f.cols.span(col)
    h, w = f.rows.image_size, f.cols.image_size
    ct, cb, cl, cr = max(top, 0), min(bottom, h - 1), max(left, 0), min(right, w - 1)
    clipped = (ct, cl, cb, cr) if ct <= cb and cl <= cr else None
    return Region(top, left, bottom, right, (h, w), clipped)


def centre_path(fields: Sequence[LayerField], layer_index: int, row: int, col: int) -> list[Pair]:
    """The neuron at every layer ``0 … layer_index`` on the centre line of the chosen one.

    Walking down from ``(row, col)``, each layer's centre tap is the neuron below at the middle
    of the window (clamped into the map when it would be a padding cell), so the page can show
    the field growing layer by layer around the same point.
    """
    path = [(row, col)]
    for f in reversed(fields[1 : layer_index + 1]):
        r, c = path[-1]
        if f.layer.is_window:
            taps = []
            for axis, idx in ((0, r), (1, c)):
                k, s = f.layer.kernel[axis], f.layer.stride[axis]
                p, d = f.layer.padding[axis], f.layer.dilation[axis]
                size = (f.rows, f.cols)[axis].input_size
                taps.append(min(max(idx * s - p + ((k - 1) // 2) * d, 0), size - 1))
            r, c = taps
        path.append((r, c))
    return path[::-1]


@dataclass(frozen=True)
class TreeLevel:
    """One level of the 1-D dependency tree: its cells and the edges down to the level below."""

    size: int
    edges: tuple[tuple[int, int], ...]
    """``(cell here, cell below)``; a cell below that is < 0 or ≥ its level's size is padding."""
    label: str


def field_tree(layers: Sequence[Layer | Mapping], input_size: int) -> list[TreeLevel]:
    """1-D view: which cells of each level feed which outputs, from the input (level 0) up.

    Uses each layer's width-axis geometry. Raises :class:`StackError` like :func:`analyse_stack`.
    """
    fields = _analyse(layers, _size_pair((1, input_size)), one_d=True)
    levels = [TreeLevel(int(input_size), (), "input")]
    for f in fields:
        axis = f.cols
        edges: list[tuple[int, int]] = []
        for m in range(axis.output_size):
            if f.layer.is_window:
                k, s = f.layer.kernel[1], f.layer.stride[1]
                p, d = f.layer.padding[1], f.layer.dilation[1]
                edges.extend((m, m * s - p + i * d) for i in range(k))
            else:
                edges.append((m, m))
        levels.append(TreeLevel(axis.output_size, tuple(edges), f.layer.describe(one_d=True)))
    return levels


def tree_dependencies(tree: Sequence[TreeLevel], level: int, cell: int) -> list[set[int]]:
    """Cells of every level ``0 … level`` that ``cell`` of ``level`` depends on.

    Padding cells (index < 0 or ≥ size) are included at the level where they are read but
    contribute nothing further down: they hold a constant, not a pixel.
    """
    deps: list[set[int]] = [set() for _ in range(level + 1)]
    deps[level] = {cell}
    for lv in range(level, 0, -1):
        for here, there in tree[lv].edges:
            if here in deps[lv] and 0 <= here < tree[lv].size:
                deps[lv - 1].add(there)
    return deps


def exact_support(
    layers: Sequence[Layer | Mapping], input_size: int, layer_index: int, index: int
) -> tuple[list[int], bool]:
    """1-D: the input pixels output ``index`` of layer ``layer_index`` really depends on.

    Returns the sorted pixel indices (dilation leaves holes in the span) and whether any path
    down from the neuron reads a padding cell at some layer.
    """
    tree = field_tree(layers, input_size)
    deps = tree_dependencies(tree, layer_index + 1, index)
    touches = any(any(c < 0 or c >= tree[lv].size for c in cells) for lv, cells in enumerate(deps))
    pixels = sorted(c for c in deps[0] if 0 <= c < tree[0].size)
    return pixels, touches


def _height_only(spec: Layer | Mapping) -> Layer:
    """The height-axis geometry moved onto the width axis, so 1-D helpers can walk rows."""
    layer = as_layer(spec)
    return replace(
        layer,
        kernel=layer.kernel[::-1],
        stride=layer.stride[::-1],
        padding=layer.padding[::-1],
        dilation=layer.dilation[::-1],
    )


def neuron_support(
    layers: Sequence[Layer | Mapping],
    input_size: int | Sequence[int],
    layer_index: int,
    row: int,
    col: int,
) -> tuple[np.ndarray, bool]:
    """2-D :func:`exact_support`: an ``(H, W)`` mask of the pixels the neuron depends on, and
    whether it reads padding at any layer. Windows are rectangles, so the mask is the outer
    product of the two axes' supports."""
    h, w = _size_pair(input_size)
    rows, touches_rows = exact_support([_height_only(s) for s in layers], h, layer_index, row)
    cols, touches_cols = exact_support(layers, w, layer_index, col)
    mask = np.zeros((h, w), dtype=bool)
    mask[np.ix_(rows, cols)] = True
    return mask, touches_rows or touches_cols


# --- building a torch network from a stack (for the effective receptive field) ----------------


def build_module(
    layers: Sequence[Layer | Mapping],
    in_channels: int = 3,
    channel_cap: int | None = None,
    relu_after_conv: bool = True,
) -> nn.Sequential:
    """A torch network with the stack's geometry (default PyTorch initialisation).

    Conv layers get their ``channels`` (``DEFAULT_CHANNELS`` when unset, at most
    ``channel_cap``); with ``relu_after_conv`` every conv not already followed by a ReLU row gets
    one, as in the preset networks. Call ``.eval()`` so batch norm and dropout are pointwise.
    """
    stack = [as_layer(s) for s in layers]
    modules: list[nn.Module] = []
    channels = in_channels
    for i, layer in enumerate(stack):
        _check_layer(i, layer)
        geo = {"kernel_size": layer.kernel, "stride": layer.stride, "padding": layer.padding}
        if layer.kind == "conv":
            out = layer.channels or DEFAULT_CHANNELS
            out = min(out, channel_cap) if channel_cap else out
            modules.append(nn.Conv2d(channels, out, dilation=layer.dilation, **geo))
            channels = out
            following = stack[i + 1].kind if i + 1 < len(stack) else None
            if relu_after_conv and following not in ("relu", "batchnorm"):
                modules.append(nn.ReLU())
        elif layer.kind == "maxpool":
            modules.append(nn.MaxPool2d(dilation=layer.dilation, **geo))
        elif layer.kind == "avgpool":
            modules.append(nn.AvgPool2d(**geo))
        elif layer.kind == "batchnorm":
            modules.append(nn.BatchNorm2d(channels))
            following = stack[i + 1].kind if i + 1 < len(stack) else None
            prev = stack[i - 1].kind if i else None
            if relu_after_conv and prev == "conv" and following != "relu":
                modules.append(nn.ReLU())
        else:
            modules.append(_POINTWISE_MODULES[layer.kind]())
    return nn.Sequential(*modules)


_POINTWISE_MODULES = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "dropout": nn.Dropout,
    "identity": nn.Identity,
}


@dataclass(frozen=True)
class EffectiveField:
    """Mean gradient magnitude of one output neuron over the input, and how concentrated it is."""

    gradient: np.ndarray
    """``(H, W)`` mean |∂ neuron / ∂ pixel| (summed over input channels)."""
    neuron: Pair
    region: Region
    mass: float
    """The share of the gradient mass :attr:`mass_pixels` holds (e.g. 0.95)."""
    mass_pixels: int
    """Fewest pixels that together hold ``mass`` of the total gradient."""

    @property
    def mass_share(self) -> float:
        """``mass_pixels`` over the theoretical field's area inside the image, in (0, 1]."""
        return self.mass_pixels / self.region.clipped_area

    @property
    def peak(self) -> Pair:
        """Input pixel with the largest mean gradient."""
        r, c = np.unravel_index(int(np.argmax(self.gradient)), self.gradient.shape)
        return int(r), int(c)


def _mass_pixels(gradient: np.ndarray, mass: float) -> int:
    """Fewest pixels, taken largest first, whose gradient sums to ``mass`` of the total."""
    values = np.sort(gradient.ravel())[::-1]
    total = float(values.sum())
    if not total > 0:
        raise ValueError(
            "The gradient is zero everywhere: no input pixel changes this neuron (every ReLU "
            "was off). Try more samples or another layer."
        )
    cumulative = np.cumsum(values)
    return int(np.searchsorted(cumulative, mass * total * (1 - 1e-12)) + 1)


def gradient_magnitude(
    module: nn.Module,
    input_shape: tuple[int, int, int],
    neuron: Pair,
    samples: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Mean over ``samples`` N(0, 1) inputs of |∂ (sum over channels of neuron) / ∂ input|.

    The batch is one backward pass: samples do not interact in an ``eval()`` network, so the
    gradient of the batch sum at the neuron is every sample's own gradient.
    """
    param = next(module.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    x = torch.randn((samples, *input_shape), generator=generator, dtype=dtype)
    x = x.to(device).requires_grad_(True)
    out = module(x)
    out[:, :, neuron[0], neuron[1]].sum().backward()
    return x.grad.abs().sum(dim=1).mean(dim=0).detach().cpu()


def effective_receptive_field(
    layers: Sequence[Layer | Mapping],
    input_size: int | Sequence[int],
    layer_index: int | None = None,
    *,
    in_channels: int = 3,
    channel_cap: int | None = 16,
    networks: int = 4,
    samples: int = 8,
    mass: float = 0.95,
    seed: int = 0,
) -> EffectiveField:
    """Effective receptive field of the centre neuron of ``layer_index`` (default: the last).

    Averages the gradient magnitude over ``networks`` freshly initialised networks built by
    :func:`build_module` × ``samples`` random N(0, 1) inputs each (Luo et al., 2016).
    ``mass_share`` is the fewest pixels holding ``mass`` of the total gradient, taken largest
    first, divided by the area of the theoretical field inside the image.
    """
    stack = [as_layer(s) for s in layers]
    fields = analyse_stack(stack, input_size)
    layer_index = len(fields) - 1 if layer_index is None else layer_index
    if not 0 <= layer_index < len(fields):
        raise ValueError(f"There is no layer {layer_index + 1}; the stack has {len(fields)}.")
    h, w = fields[0].rows.image_size, fields[0].cols.image_size
    oh, ow = fields[layer_index].output_hw
    neuron = (oh // 2, ow // 2)
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros((h, w), dtype=torch.float64)
    with seeded(seed):
        for _ in range(networks):
            module = build_module(stack[: layer_index + 1], in_channels, channel_cap).eval()
            total += gradient_magnitude(module, (in_channels, h, w), neuron, samples, generator)
    gradient = (total / networks).numpy()
    region = neuron_region(fields, layer_index, *neuron)
    return EffectiveField(gradient, neuron, region, mass, _mass_pixels(gradient, mass))


def trained_receptive_field(
    module: nn.Module,
    fields: Sequence[LayerField],
    layer_index: int,
    in_channels: int,
    *,
    samples: int = 32,
    mass: float = 0.95,
    seed: int = 0,
) -> EffectiveField:
    """Effective field of a trained network ``module`` whose output is layer ``layer_index``."""
    h, w = fields[0].rows.image_size, fields[0].cols.image_size
    oh, ow = fields[layer_index].output_hw
    neuron = (oh // 2, ow // 2)
    generator = torch.Generator().manual_seed(seed)
    gradient = gradient_magnitude(module.eval(), (in_channels, h, w), neuron, samples, generator)
    gradient = gradient.double().numpy()
    region = neuron_region(fields, layer_index, *neuron)
    return EffectiveField(gradient, neuron, region, mass, _mass_pixels(gradient, mass))


# --- presets: famous stacks with their published hyper-parameters ------------------------------


@dataclass(frozen=True)
class Preset:
    """A named stack with the input size it was designed for and where its numbers come from."""

    name: str
    input_size: int
    in_channels: int
    layers: tuple[Layer, ...]
    source: str


def _conv(k: int, channels: int, s: int = 1, p: int = 0, name: str = "") -> Layer:
    return Layer.make("conv", k, s, p, 1, channels, name)


def _pool(kind: str, k: int, s: int, p: int = 0, name: str = "") -> Layer:
    return Layer.make(kind, k, s, p, 1, None, name)


def _vgg16() -> tuple[Layer, ...]:
    layers: list[Layer] = []
    for block, (width, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), 1):
        layers += [_conv(3, width, 1, 1, f"conv{block}_{i}") for i in range(1, convs + 1)]
        layers.append(_pool("maxpool", 2, 2, 0, f"pool{block}"))
    return tuple(layers)


def _resnet18() -> tuple[Layer, ...]:
    layers = [_conv(7, 64, 2, 3, "conv1"), _pool("maxpool", 3, 2, 1, "maxpool")]
    for stage, width in enumerate((64, 128, 256, 512), 1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            layers.append(_conv(3, width, stride, 1, f"layer{stage}.{block}.conv1"))
            layers.append(_conv(3, width, 1, 1, f"layer{stage}.{block}.conv2"))
    return tuple(layers)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "Small CNN",
            32,
            3,
            (
                _conv(3, 8, 1, 1, "conv1"),
                Layer.make("relu", name="relu1"),
                _pool("maxpool", 2, 2, name="pool1"),
                _conv(3, 16, 1, 1, "conv2"),
                Layer.make("relu", name="relu2"),
                _pool("maxpool", 2, 2, name="pool2"),
                Layer.make("conv", 3, 1, 2, 2, 16, "conv3 (dilated)"),
                Layer.make("relu", name="relu3"),
            ),
            "A small teaching stack: two conv + ReLU + pool blocks, then a dilated conv.",
        ),
        Preset(
            "LeNet-5",
            32,
            1,
            (
                _conv(5, 6, name="C1"),
                _pool("avgpool", 2, 2, name="S2"),
                _conv(5, 16, name="C3"),
                _pool("avgpool", 2, 2, name="S4"),
                _conv(5, 120, name="C5"),
            ),
            "LeCun et al. 1998: 32×32 input, 5×5 convolutions without padding, 2×2 "
            "subsampling (drawn as average pooling).",
        ),
        Preset(
            "AlexNet features",
            224,
            3,
            (
                _conv(11, 64, 4, 2, "conv1"),
                _pool("maxpool", 3, 2, name="pool1"),
                _conv(5, 192, 1, 2, "conv2"),
                _pool("maxpool", 3, 2, name="pool2"),
                _conv(3, 384, 1, 1, "conv3"),
                _conv(3, 256, 1, 1, "conv4"),
                _conv(3, 256, 1, 1, "conv5"),
                _pool("maxpool", 3, 2, name="pool5"),
            ),
            "torchvision's alexnet().features (Krizhevsky et al. 2012, one-GPU variant): "
            "224×224 input, ends at 6×6×256.",
        ),
        Preset(
            "VGG-16 features",
            224,
            3,
            _vgg16(),
            "Simonyan & Zisserman 2015, configuration D: 3×3 convolutions with padding 1, "
            "2×2 max pools with stride 2; 224×224 input, ends at 7×7×512.",
        ),
        Preset(
            "ResNet-18 stem and stages",
            224,
            3,
            _resnet18(),
            "He et al. 2016 / torchvision resnet18: 7×7 stride-2 stem, 3×3 stride-2 max pool, "
            "four stages of two basic blocks; the first 3×3 conv of stages 2–4 has stride 2. "
            "Main path only: the shortcut (identity or 1×1 stride-2 conv) is centred on the "
            "same pixel with a smaller field, so the theoretical field is exactly the main "
            "path's; batch norm and ReLU are pointwise and left out.",
        ),
    )
}


def stack_from_layer_dicts(layer_dicts: Iterable[Mapping]) -> list[Layer]:
    """Adapt a model description's layer dicts to a stack, up to the first non-spatial layer.

    Accepts kinds ``conv``/``conv2d``, ``maxpool``, ``avgpool`` and pointwise ones; it stops at
    ``flatten``/``linear``/global pooling, where the spatial grid (and so the field) ends.
    """
    aliases = {"conv2d": "conv", "max_pool": "maxpool", "avg_pool": "avgpool", "bn": "batchnorm"}
    stack: list[Layer] = []
    for spec in layer_dicts:
        kind = str(spec.get("kind", "")).strip().lower()
        kind = aliases.get(kind, kind)
        if kind not in KINDS:
            break
        stack.append(as_layer({**spec, "kind": kind}))
    return stack

"""Every number of a network, layer by layer: output shape, parameters, multiply-adds, activation
memory and receptive field, traced on the ``meta`` device (no weights allocated, no arithmetic).

Conventions, as in the published figures: multiply-adds count convolutions and fully connected
layers only (one multiply-add = 2 FLOPs; biases, batch norm, activations, pooling and the residual
additions are left out, as ``torch.utils.flop_counter.FlopCounterMode`` does). Activation memory
is each layer's output for one image in float32. The receptive field follows the main path
(:mod:`cnnlab.receptive_field`); shortcut projections run beside it with smaller fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from cnnlab import zoo
from cnnlab.conv import parameter_counts
from cnnlab.receptive_field import Layer, analyse_stack

Shape = tuple[int, ...]

# Modules drawn as one row although they hold children (their parts run in parallel).
_ATOMIC = (zoo.PartialConv, zoo.Subsampling)
# Blocks the diagram draws as one box.
BLOCKS = (zoo.BasicBlock, zoo.Bottleneck, zoo.InvertedResidual, zoo.DepthwiseSeparable)


@dataclass(frozen=True)
class LayerRow:
    """One layer of the table."""

    name: str
    kind: str
    output_shape: Shape
    params: int
    macs: int
    activation_bytes: int
    receptive_field: int | None
    """Field size along the height in input pixels; ``None`` once every output sees everything."""


@dataclass(frozen=True)
class Anatomy:
    """A whole network: its rows and totals for one input shape."""

    name: str
    input_shape: Shape
    rows: tuple[LayerRow, ...]

    @property
    def params(self) -> int:
        """Total parameters."""
        return sum(r.params for r in self.rows)

    @property
    def macs(self) -> int:
        """Total multiply-adds for one image."""
        return sum(r.macs for r in self.rows)

    @property
    def flops(self) -> int:
        """Total FLOPs for one image (2 per multiply-add)."""
        return 2 * self.macs

    @property
    def activation_bytes(self) -> int:
        """Sum of every layer's float32 output for one image."""
        return sum(r.activation_bytes for r in self.rows)

    @property
    def output_shape(self) -> Shape:
        """Shape of the network's output for one image."""
        return self.rows[-1].output_shape


def kind_of(module: nn.Module) -> str:
    """A short human name: ``conv 3×3 s2``, ``depthwise conv 3×3``, ``linear``, ``batch norm``."""
    if isinstance(module, nn.Conv2d):
        k, s = module.kernel_size[0], module.stride[0]
        if module.groups == module.in_channels and module.groups > 1:
            word = "depthwise conv"
        elif module.groups > 1:
            word = f"grouped conv ({module.groups} groups)"
        else:
            word = "conv"
        return f"{word} {k}×{k}" + (f" s{s}" if s != 1 else "")
    if isinstance(module, zoo.PartialConv):
        return "partial conv 5×5 (Table I)"
    if isinstance(module, zoo.Subsampling):
        return "subsampling 2×2 (×w + b)"
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        word = "max pool" if isinstance(module, nn.MaxPool2d) else "avg pool"
        return f"{word} {module.kernel_size}×{module.kernel_size} s{module.stride}"
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return "adaptive avg pool"
    names = {
        nn.Linear: "linear",
        nn.BatchNorm2d: "batch norm",
        nn.ReLU: "ReLU",
        nn.ReLU6: "ReLU6",
        nn.Dropout: "dropout",
        nn.Flatten: "flatten",
        zoo.ScaledTanh: "1.7159·tanh(2x/3)",
    }
    return names.get(type(module), type(module).__name__)


def _rows_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that get a row: leaves, and the atomic modules whose parts run in parallel."""
    rows, skip = [], ()
    for name, module in model.named_modules():
        if skip and name.startswith(skip):
            continue
        if isinstance(module, _ATOMIC):
            rows.append((name, module))
            skip = (f"{name}.",)
        elif not any(True for _ in module.children()):
            rows.append((name, module))
    return rows


def _macs(module: nn.Module, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        k = math.prod(module.kernel_size)
        return out.numel() * (module.in_channels // module.groups) * k
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    return 0


def _window(module: nn.Module, name: str) -> Layer | None:
    """The receptive-field layer of a module that slides a window, else ``None``."""
    if isinstance(module, zoo.Subsampling):
        module = module.pool
    if isinstance(module, zoo.PartialConv):
        module = module.convs[0]
    if isinstance(module, nn.Conv2d):
        k, s, p, d = module.kernel_size, module.stride, module.padding, module.dilation
        return Layer.make("conv", tuple(k), tuple(s), tuple(p), tuple(d), name=name)
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        kind = "maxpool" if isinstance(module, nn.MaxPool2d) else "avgpool"
        dilation = module.dilation if isinstance(module, nn.MaxPool2d) else 1
        return Layer.make(kind, module.kernel_size, module.stride, module.padding, dilation)
    return None


def trace(model: nn.Module, input_shape: Shape) -> list[tuple[str, nn.Module, Shape, Shape, int]]:
    """(name, module, input shape, output shape, multiply-adds) of every row module, in the order
    they run, for one image of ``input_shape`` (C, H, W); ``model`` may live on ``meta``."""
    rows = _rows_modules(model)
    seen: list[tuple[str, nn.Module, Shape, Shape, int]] = []
    counted: dict[int, int] = {}

    def count(module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        counted[id(module)] = counted.get(id(module), 0) + _macs(module, out)

    handles = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]

    def record(name: str, module: nn.Module):
        def hook(_m: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
            macs = sum(counted.pop(id(m), 0) for m in module.modules())
            seen.append((name, module, tuple(inputs[0].shape[1:]), tuple(out.shape[1:]), macs))

        return hook

    handles += [m.register_forward_hook(record(n, m)) for n, m in rows]
    try:
        with torch.no_grad():
            model.eval()(torch.empty((1, *input_shape), device=_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def analyse(model: nn.Module, input_shape: Shape, name: str = "network") -> Anatomy:
    """Per-layer shapes, parameters, multiply-adds, memory and receptive field of ``model``.

    Raises ``ValueError`` in words when the input is too small for the network.
    """
    try:
        traced = trace(model, input_shape)
    except RuntimeError as exc:
        raise ValueError(
            f"{name} cannot run on a {'×'.join(map(str, input_shape))} input: a layer's output "
            f"would be empty or the sizes do not fit ({str(exc).splitlines()[0]}). "
            "Use a larger input."
        ) from exc
    stack: list[Layer] = []
    field: int | None = 1
    rows = []
    for row_name, module, _, out_shape, macs in traced:
        window = _window(module, row_name)
        on_main_path = ".downsample." not in f".{row_name}."
        if window is not None and on_main_path and field is not None:
            stack.append(window)
            field = analyse_stack(stack, input_shape[1:])[-1].rows.rf
        elif len(out_shape) == 1 or (len(out_shape) == 3 and out_shape[1:] == (1, 1)):
            field = None  # flattened or globally pooled: every output sees the whole image
        params = sum(p.numel() for p in module.parameters())
        memory = math.prod(out_shape) * 4
        rows.append(LayerRow(row_name, kind_of(module), out_shape, params, macs, memory, field))
    return Anatomy(name, tuple(input_shape), tuple(rows))


def default_classes(name: str) -> int:
    """Classes an architecture was published with: 10 digits/CIFAR classes or ImageNet's 1000."""
    return 10 if name in ("lenet5", "textbook") else 1000


def meta_model(name: str, num_classes: int | None = None) -> nn.Module:
    """``cnnlab.zoo.build(name)`` on the meta device: shapes and counts, no memory."""
    with torch.device("meta"):
        return zoo.build(name, default_classes(name) if num_classes is None else num_classes)


def analyse_zoo(
    name: str, input_size: int | None = None, num_classes: int | None = None
) -> Anatomy:
    """:func:`analyse` of a zoo architecture at ``input_size`` pixels (default: its own)."""
    if name not in zoo.NAMES:
        raise ValueError(f"Unknown architecture {name!r}. Choose one of: {', '.join(zoo.NAMES)}.")
    c, h, _ = zoo.INPUT_SHAPES[name]
    side = h if input_size is None else int(input_size)
    if name == "textbook" and side % 4:
        raise ValueError(f"The textbook network needs a side divisible by 4, got {side}.")
    model = meta_model(name, num_classes)
    if name == "textbook":
        with torch.device("meta"):
            model = zoo.textbook(
                default_classes(name) if num_classes is None else num_classes, c, side
            )
    return analyse(model, (c, side, side), name)


# -- the diagram: one box per layer or block, shapes on the edges ------------------------------
_FOLDED = (nn.ReLU, nn.ReLU6, nn.BatchNorm2d, nn.Dropout, nn.Flatten, zoo.ScaledTanh)


@dataclass(frozen=True)
class Box:
    """One box of the diagram: a layer (with its folded BN/activation) or a whole block."""

    label: str
    block: str
    """"" for a plain layer, else the block kind ("residual", "inverted residual", …)."""
    output_shape: Shape
    repeat: int = 1


def _block_label(module: nn.Module) -> tuple[str, str]:
    if isinstance(module, zoo.BasicBlock):
        skip = "1×1 projection" if module.downsample is not None else "identity"
        s = module.conv1.stride[0]
        return (
            f"basic block: conv 3×3{f' s{s}' if s > 1 else ''}, conv 3×3; {skip} skip",
            "residual",
        )
    if isinstance(module, zoo.Bottleneck):
        skip = "1×1 projection" if module.downsample is not None else "identity"
        s = module.conv2.stride[0]
        label = f"bottleneck: 1×1, 3×3{f' s{s}' if s > 1 else ''}, 1×1 ×4; {skip} skip"
        return label, "residual"
    if isinstance(module, zoo.InvertedResidual):
        dw = next(m for m in module.modules() if isinstance(m, nn.Conv2d) and m.groups > 1)
        t = dw.in_channels // module.conv[0][0].in_channels
        s = dw.stride[0]
        skip = "; identity skip" if module.use_res_connect else ""
        expand = "1×1 expand, " if t > 1 else ""
        label = f"inverted residual t={t}: {expand}dw 3×3{f' s{s}' if s > 1 else ''}, 1×1{skip}"
        return label, "inverted residual"
    if isinstance(module, zoo.DepthwiseSeparable):
        s = module.depthwise[0].stride[0]
        return f"depthwise 3×3{f' s{s}' if s > 1 else ''} + pointwise 1×1", "separable"
    return kind_of(module), ""


def _units(model: nn.Module) -> list[nn.Module]:
    units: list[nn.Module] = []
    for child in model.children():
        if isinstance(child, BLOCKS + _ATOMIC) or not any(True for _ in child.children()):
            units.append(child)
        else:
            units += _units(child)
    return units


def diagram(model: nn.Module, input_shape: Shape) -> list[Box]:
    """The layer sequence as boxes: activations and batch norm folded into the layer before,
    blocks as one box, identical consecutive boxes merged with a repeat count."""
    units = _units(model)
    shapes: dict[int, Shape] = {}
    handles = [
        u.register_forward_hook(lambda m, _i, out: shapes.__setitem__(id(m), tuple(out.shape[1:])))
        for u in units
    ]
    try:
        with torch.no_grad():
            model.eval()(torch.empty((1, *input_shape), device=_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    boxes: list[Box] = []
    for unit in units:
        shape = shapes[id(unit)]
        label, block = _block_label(unit)
        if boxes and isinstance(unit, _FOLDED) and not boxes[-1].block:
            word = "BN" if isinstance(unit, nn.BatchNorm2d) else label
            boxes[-1] = Box(f"{boxes[-1].label} + {word}", "", shape)
        else:
            boxes.append(Box(label, block, shape))
    merged: list[Box] = []
    for box in boxes:
        if merged and (merged[-1].label, merged[-1].block, merged[-1].output_shape) == (
            box.label,
            box.block,
            box.output_shape,
        ):
            box = Box(box.label, box.block, box.output_shape, merged.pop().repeat + 1)
        merged.append(box)
    return merged


# -- MLP versus CNN: what local connectivity and weight sharing save ---------------------------
@dataclass(frozen=True)
class DenseVsConv:
    """Parameters of one layer mapping ``input_shape`` to ``output_shape`` three ways."""

    name: str
    input_shape: Shape
    output_shape: Shape
    fully_connected: int
    locally_connected: int
    convolution: int


def first_layer(input_shape: Shape, hidden: int, filters: int, kernel: int) -> tuple[int, int]:
    """Parameters of a fully connected first layer with ``hidden`` units versus a ``kernel``×
    ``kernel`` conv with ``filters`` filters on ``input_shape`` (both with biases), from modules."""
    c, h, w = input_shape
    if min(c, h, w, hidden, filters, kernel) < 1:
        raise ValueError("Every size must be at least 1.")
    with torch.device("meta"):
        dense = nn.Linear(c * h * w, hidden)
        conv = nn.Conv2d(c, filters, kernel, padding=kernel // 2)
    return _count(dense), _count(conv)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def network_dense_vs_conv(input_shape: Shape, num_classes: int = 10) -> list[DenseVsConv]:
    """Each conv layer of the textbook network on ``input_shape`` next to a locally connected
    and a fully connected layer with the same input and output shapes; other layers as they are."""
    c, side, _ = input_shape
    if side % 4 or side < 4:
        raise ValueError(f"The textbook network needs a side divisible by 4, got {side}.")
    with torch.device("meta"):
        model = zoo.textbook(num_classes, c, side)
    rows = []
    for name, module, in_shape, out_shape, _ in trace(model, input_shape):
        params = _count(module)
        if isinstance(module, nn.Conv2d):
            counts = parameter_counts(in_shape, out_shape, module.kernel_size)
            fc, lc = counts.fully_connected, counts.locally_connected
        elif params:
            fc = lc = params
        else:
            continue
        rows.append(DenseVsConv(f"{name}: {kind_of(module)}", in_shape, out_shape, fc, lc, params))
    return rows

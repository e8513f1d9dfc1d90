"""The blocks deep CNNs are built from, taken apart: residual (y = F(x) + x), bottleneck,
inverted residual (MobileNetV2) and dense (DenseNet: concatenation), with every shape and
parameter count read off the real module as it runs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.zoo import BasicBlock, Bottleneck, InvertedResidual

KINDS = ("basic", "bottleneck", "inverted", "dense")
KIND_LABELS = {
    "basic": "Residual block (ResNet-18)",
    "bottleneck": "Bottleneck residual block (ResNet-50)",
    "inverted": "Inverted residual (MobileNetV2)",
    "dense": "Dense block (DenseNet-BC)",
}


class DenseLayer(nn.Module):
    """DenseNet-BC layer: BN-ReLU-1×1 conv (4k) then BN-ReLU-3×3 conv (k new channels)."""

    def __init__(self, in_channels: int, growth: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, 4 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The ``growth`` new feature maps this layer adds."""
        return self.conv2(torch.relu(self.norm2(self.conv1(torch.relu(self.norm1(x))))))


class DenseBlock(nn.Module):
    """Each layer sees the concatenation of the block's input and every earlier layer's output."""

    def __init__(self, in_channels: int, layers: int, growth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth, growth) for i in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """cat(x, f1(x), f2(cat(x, f1(x))), …) along channels."""
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


@dataclass(frozen=True)
class Step:
    """One operation on the block's main path with the shape it produces (C, H, W)."""

    name: str
    shape: tuple[int, int, int]
    params: int


@dataclass(frozen=True)
class Anatomy:
    """A block taken apart: its main path, its skip, how they combine, and the totals."""

    kind: str
    input_shape: tuple[int, int, int]
    steps: tuple[Step, ...]
    skip: str  # "identity", "1×1 projection", "none" or "concatenation"
    skip_params: int
    combine: str  # "add", "concatenate" or "none"
    output_shape: tuple[int, int, int]
    params: int  # every parameter of the module, counted by torch


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _describe(module: nn.Module) -> str:
    if isinstance(module, DenseLayer):
        return (
            f"BN-ReLU-1×1 conv → {module.conv1.out_channels}, "
            f"BN-ReLU-3×3 conv → {module.conv2.out_channels}"
        )
    if isinstance(module, nn.Conv2d):
        k = "×".join(map(str, module.kernel_size))
        kind = "depthwise " if module.groups == module.in_channels > 1 else ""
        stride = f", stride {module.stride[0]}" if module.stride[0] > 1 else ""
        return f"{kind}{k} conv → {module.out_channels}{stride}"
    return "batch norm"


def build_block(
    kind: str, in_channels: int, out_channels: int, stride: int = 1, expand: int = 6
) -> nn.Module:
    """The real block: ``out_channels`` is the block's output width (for ``dense``, the growth
    rate k, with ``expand`` layers; for ``bottleneck`` it must be a multiple of 4)."""
    if kind not in KINDS:
        raise ValueError(f"Unknown block {kind!r}; choose one of {', '.join(KINDS)}.")
    if not (1 <= in_channels <= 2048 and 1 <= out_channels <= 2048):
        raise ValueError("Channels must be between 1 and 2048.")
    if stride not in (1, 2):
        raise ValueError("The stride must be 1 or 2.")
    if kind == "basic":
        return BasicBlock(in_channels, out_channels, stride)
    if kind == "bottleneck":
        if out_channels % 4:
            raise ValueError(
                "A bottleneck block's output width is 4× its inner width: use a multiple of 4."
            )
        return Bottleneck(in_channels, out_channels // 4, stride)
    if not 1 <= expand <= 12:
        raise ValueError("The expansion (or number of dense layers) must be between 1 and 12.")
    if kind == "inverted":
        return InvertedResidual(in_channels, out_channels, stride, expand)
    if stride != 1:
        raise ValueError("A dense block keeps the size; DenseNet downsamples between blocks.")
    return DenseBlock(in_channels, expand, out_channels)


def _main_path(block: nn.Module) -> list[nn.Module]:
    # Convolutions and batch norms in forward order (activations are named in the page's text);
    # a dense block's layers count as one step each, since each sees the growing concatenation.
    if isinstance(block, DenseBlock):
        return list(block.layers)
    main = block.conv if isinstance(block, InvertedResidual) else block
    skip = getattr(block, "downsample", None)
    skip_ids = {id(m) for m in skip.modules()} if skip is not None else set()
    return [
        m
        for m in main.modules()
        if isinstance(m, nn.Conv2d | nn.BatchNorm2d) and id(m) not in skip_ids
    ]


def anatomy(block: nn.Module, input_shape: tuple[int, int, int]) -> Anatomy:
    """Run ``block`` (from :func:`build_block`) on zeros and record each main-path step's shape."""
    path = _main_path(block)
    order = {id(m): i for i, m in enumerate(path)}
    seen: dict[int, Step] = {}

    def record(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        seen[order[id(module)]] = Step(_describe(module), tuple(output.shape[1:]), _params(module))

    hooks = [m.register_forward_hook(record) for m in path]
    try:
        with torch.no_grad():
            out = block.eval()(torch.zeros(1, *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    steps = [seen[i] for i in sorted(seen)]
    if isinstance(block, DenseBlock):
        skip, skip_params, combine = "concatenation", 0, "concatenate"
    elif isinstance(block, InvertedResidual):
        skip, skip_params = ("identity", 0) if block.use_res_connect else ("none", 0)
        combine = "add" if block.use_res_connect else "none"
    else:
        projection = block.downsample
        skip = "identity" if projection is None else "1×1 projection"
        skip_params = 0 if projection is None else _params(projection)
        combine = "add"
    return Anatomy(
        kind=next(k for k, cls in _CLASSES.items() if isinstance(block, cls)),
        input_shape=tuple(input_shape),
        steps=tuple(steps),
        skip=skip,
        skip_params=skip_params,
        combine=combine,
        output_shape=tuple(out.shape[1:]),
        params=_params(block),
    )


_CLASSES = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
    "inverted": InvertedResidual,
    "dense": DenseBlock,
}


def _hwc(shape: tuple[int, ...]) -> str:
    c, h, w = shape
    return f"{h}×{w}×{c}"


def block_dot(a: Anatomy) -> str:
    """Graphviz DOT of the block: main path top to bottom, the skip beside it, shapes on edges."""
    lines = [
        "digraph block {",
        '  rankdir=TB; bgcolor="transparent"; nodesep=0.5;',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11,',
        '        fillcolor="#e0ecff", color="#2563eb"];',
        '  edge [color="#475569", fontname="Helvetica", fontsize=10];',
        f'  x [label="input x\\n{_hwc(a.input_shape)}", fillcolor="#f1f5f9", color="#64748b"];',
    ]
    if a.combine == "concatenate":
        return _dense_dot(a, lines)
    previous, shape = "x", a.input_shape
    for i, step in enumerate(a.steps):
        weights = f"\\n{step.params:,} parameters" if step.params else ""
        lines.append(f'  s{i} [label="{step.name}{weights}"];')
        lines.append(f'  {previous} -> s{i} [label=" {_hwc(shape)}"];')
        previous, shape = f"s{i}", step.shape
    symbol = {"add": "+", "concatenate": "concat", "none": ""}[a.combine]
    if symbol:
        lines.append(
            f'  join [label="{symbol}", shape=circle, fillcolor="#fef3c7", color="#d97706"];'
        )
        lines.append(f'  {previous} -> join [label=" {_hwc(shape)}"];')
        if a.skip == "1×1 projection":
            lines.append(f'  proj [label="1×1 conv + BN\\n{a.skip_params:,} parameters"];')
            lines.append(f'  x -> proj [label=" {_hwc(a.input_shape)}"];')
            lines.append('  proj -> join [style=dashed, label=" skip"];')
        elif a.skip != "none":
            lines.append(f'  x -> join [style=dashed, label=" {a.skip}"];')
        previous = "join"
    lines.append(
        f'  y [label="output y\\n{_hwc(a.output_shape)}", fillcolor="#dcfce7", color="#16a34a"];'
    )
    lines.append(f"  {previous} -> y;")
    lines.append("}")
    return "\n".join(lines)


def _dense_dot(a: Anatomy, lines: list[str]) -> str:
    """Each dense layer reads the running concatenation and adds its k maps to it."""
    previous, shape = "x", a.input_shape
    for i, step in enumerate(a.steps):
        name = step.name.replace(", ", "\\n")
        lines.append(f'  s{i} [label="{name}\\n{step.params:,} parameters"];')
        lines.append(
            f'  c{i} [label="concat", shape=circle, fillcolor="#fef3c7", color="#d97706"];'
        )
        lines.append(f'  {previous} -> s{i} [label=" {_hwc(shape)}"];')
        lines.append(f'  {previous} -> c{i} [style=dashed, label=" copy"];')
        lines.append(f'  s{i} -> c{i} [label=" +{step.shape[0]}"];')
        previous, shape = f"c{i}", (shape[0] + step.shape[0], *shape[1:])
    lines.append(
        f'  y [label="output y\\n{_hwc(a.output_shape)}", fillcolor="#dcfce7", color="#16a34a"];'
    )
    lines.append(f"  {previous} -> y;")
    lines.append("}")
    return "\n".join(lines)

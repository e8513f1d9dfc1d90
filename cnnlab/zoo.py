"""Famous CNN architectures, defined once in plain PyTorch (torchvision is unusable here).

Module names follow torchvision wherever torchvision has the model (``conv1``, ``layer1.0.conv1``,
``fc``; ``features.0.0``, ``classifier.1``), so a torchvision ImageNet checkpoint converted to
safetensors loads into :func:`build` with ``strict=True``. Every definition below uses only
``torch`` and ``torch.nn``, so its source doubles as a standalone script.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class ScaledTanh(nn.Module):
    """LeNet-5's squashing function 1.7159·tanh(2x/3) (LeCun et al. 1998, appendix A)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """1.7159·tanh(2x/3)."""
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class Subsampling(nn.Module):
    """LeNet-5's S2/S4: 2×2 average × a trainable coefficient + a trainable bias, per map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(2)
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """pool(x)·w + b, one w and b per channel."""
        return self.pool(x) * self.weight[:, None, None] + self.bias[:, None, None]


# LeNet-5's Table I: which of S2's 6 maps feed each of C3's 16 maps (breaks symmetry, saves
# weights): maps 0–5 see 3 neighbours, 6–14 see 4, map 15 sees all 6.
LENET_C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2),
    (1, 2, 3),
    (2, 3, 4),
    (3, 4, 5),
    (0, 4, 5),
    (0, 1, 5),
    (0, 1, 2, 3),
    (1, 2, 3, 4),
    (2, 3, 4, 5),
    (0, 3, 4, 5),
    (0, 1, 4, 5),
    (0, 1, 2, 5),
    (0, 1, 3, 4),
    (1, 2, 4, 5),
    (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


class PartialConv(nn.Module):
    """LeNet-5's C3: 5×5 convolutions where output map j sees only the input maps in table[j].

    Maps with the same number of inputs are gathered into one grouped convolution, so PyTorch
    holds exactly the paper's weights (1,516) and counts exactly its multiply-adds.
    """

    def __init__(self, table: tuple[tuple[int, ...], ...], kernel_size: int) -> None:
        super().__init__()
        sizes = sorted({len(inputs) for inputs in table})
        self.order = [j for size in sizes for j, inputs in enumerate(table) if len(inputs) == size]
        self.gathers = [
            [i for inputs in table if len(inputs) == size for i in inputs] for size in sizes
        ]
        self.convs = nn.ModuleList(
            nn.Conv2d(len(gather), len(gather) // size, kernel_size, groups=len(gather) // size)
            for gather, size in zip(self.gathers, sizes, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Each group's convolution on its gathered inputs, outputs put back in table order."""
        parts = [conv(x[:, g]) for conv, g in zip(self.convs, self.gathers, strict=True)]
        out = torch.cat(parts, dim=1)
        return out[:, sorted(range(len(self.order)), key=self.order.__getitem__)]


def lenet5(num_classes: int = 10) -> nn.Sequential:
    """LeNet-5 as in LeCun et al. 1998, a linear output layer in place of the fixed RBF units."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5),  # C1: 32×32 → 28×28×6
        ScaledTanh(),
        Subsampling(6),  # S2: → 14×14×6
        ScaledTanh(),
        PartialConv(LENET_C3_TABLE, 5),  # C3: → 10×10×16
        ScaledTanh(),
        Subsampling(16),  # S4: → 5×5×16
        ScaledTanh(),
        nn.Conv2d(16, 120, 5),  # C5: → 1×1×120
        ScaledTanh(),
        nn.Flatten(),
        nn.Linear(120, 84),  # F6
        ScaledTanh(),
        nn.Linear(84, num_classes),
    )


class AlexNet(nn.Module):
    """AlexNet as in torchvision (Krizhevsky 2014's one-GPU variant: 64-192-384-256-256)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """features → 6×6 average pool → flatten → classifier."""
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class VGG(nn.Module):
    """VGG-16 (Simonyan & Zisserman 2015, configuration D) as in torchvision, no batch norm."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        plan = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"] + [512, 512, 512, "M"] * 2
        for width in plan:
            if width == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
                channels = width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """features → 7×7 average pool → flatten → classifier."""
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class BasicBlock(nn.Module):
    """ResNet-18/34 block: two 3×3 convs with batch norm, plus the input (projected if needed)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(inplanes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """ResNet-50 block: 1×1 reduce, 3×3 (stride here, as torchvision's "v1.5"), 1×1 expand ×4."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(inplanes, planes * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """relu(bn3(conv3(...conv1(x))) + shortcut(x))."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def _downsample(inplanes: int, planes: int, stride: int) -> nn.Sequential | None:
    # The skip must match the main path's shape: a strided 1×1 conv + BN where it would not.
    if stride == 1 and inplanes == planes:
        return None
    return nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))


class ResNet(nn.Module):
    """ResNet (He et al. 2016) with torchvision's module names: stem, four stages, fc."""

    def __init__(
        self, block: type[BasicBlock | Bottleneck], depths: list[int], num_classes: int = 1000
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for stage, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
            blocks = []
            for i in range(depth):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(block(inplanes, planes, stride))
                inplanes = planes * block.expansion
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """stem → layer1..layer4 → global average pool → fc."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def conv_bn_act(
    inp: int, out: int, kernel: int, stride: int = 1, groups: int = 1, act: type = nn.ReLU6
) -> nn.Sequential:
    """Conv (no bias) → batch norm → activation, as torchvision's Conv2dNormActivation."""
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
        act(inplace=True),
    )


class DepthwiseSeparable(nn.Module):
    """MobileNet V1 block: 3×3 depthwise conv (one filter per channel), then a 1×1 pointwise."""

    def __init__(self, inp: int, out: int, stride: int) -> None:
        super().__init__()
        self.depthwise = conv_bn_act(inp, inp, 3, stride, groups=inp, act=nn.ReLU)
        self.pointwise = conv_bn_act(inp, out, 1, act=nn.ReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """pointwise(depthwise(x))."""
        return self.pointwise(self.depthwise(x))


class MobileNetV1(nn.Module):
    """MobileNet V1 1.0-224 (Howard et al. 2017, Table 1; the 13th depthwise conv has stride 1)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
        plan += [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
        layers: list[nn.Module] = [conv_bn_act(3, 32, 3, 2, act=nn.ReLU)]
        channels = 32
        for out, stride in plan:
            layers.append(DepthwiseSeparable(channels, out, stride))
            channels = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """features → global average pool → fc."""
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class InvertedResidual(nn.Module):
    """MobileNet V2 block: 1×1 expand ×t, 3×3 depthwise, linear 1×1 projection, skip if same."""

    def __init__(self, inp: int, out: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == out
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_bn_act(inp, hidden, 1))
        layers += [
            conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, out, 1, bias=False),  # linear bottleneck: no activation after it
            nn.BatchNorm2d(out),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x + conv(x) when the block keeps the shape, conv(x) otherwise."""
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNet V2 1.0-224 (Sandler et al. 2018, Table 2) with torchvision's module names."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        # (expansion t, output channels c, repeats n, first stride s), as in the paper's Table 2.
        plan = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2)]
        plan += [(6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        layers: list[nn.Module] = [conv_bn_act(3, 32, 3, 2)]
        channels = 32
        for t, c, n, s in plan:
            for i in range(n):
                layers.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                channels = c
        layers.append(conv_bn_act(channels, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """features → global average pool → dropout → fc."""
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def textbook(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> nn.Sequential:
    """The primers' network: 32×32×3 → conv 16 → pool → conv 32 → pool → 2048 → 128 → classes."""
    flat = 32 * (input_size // 4) ** 2  # two 2×2 pools quarter each side: 32·8·8 = 2048 at 32
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1),  # → 32×32×16
        nn.ReLU(),
        nn.MaxPool2d(2),  # → 16×16×16
        nn.Conv2d(16, 32, 3, padding=1),  # → 16×16×32
        nn.ReLU(),
        nn.MaxPool2d(2),  # → 8×8×32
        nn.Flatten(),  # → 2048
        nn.Linear(flat, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def resnet18(num_classes: int = 1000) -> ResNet:
    """ResNet-18: basic blocks, 2-2-2-2."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def resnet50(num_classes: int = 1000) -> ResNet:
    """ResNet-50: bottleneck blocks, 3-4-6-3."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)


_BUILDERS = {
    "lenet5": lenet5,
    "alexnet": AlexNet,
    "vgg16": VGG,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v1": MobileNetV1,
    "mobilenet_v2": MobileNetV2,
    "textbook": textbook,
}
NAMES: tuple[str, ...] = tuple(_BUILDERS)
"""Architecture names :func:`build` accepts."""

INPUT_SHAPES: dict[str, tuple[int, int, int]] = {
    "lenet5": (1, 32, 32),
    "textbook": (3, 32, 32),
    **{name: (3, 224, 224) for name in NAMES if name not in ("lenet5", "textbook")},
}
"""The (C, H, W) input each architecture was designed for."""


def build(name: str, num_classes: int = 1000) -> nn.Module:
    """A freshly initialised ``name`` (one of :data:`NAMES`) with ``num_classes`` outputs.

    Build it under ``torch.device("meta")`` to count and trace it without allocating weights.
    """
    if name not in _BUILDERS:
        raise ValueError(f"Unknown architecture {name!r}. Choose one of: {', '.join(NAMES)}.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"The number of classes must be a whole number ≥ 1, got {num_classes!r}.")
    return _BUILDERS[name](num_classes)


@dataclass(frozen=True)
class Published:
    """What the literature says about an architecture, to hold the computed numbers against."""

    title: str
    params: str
    """Published parameter count, as printed (``61,100,840`` or ``≈ 4.2 M``)."""
    gmacs: str
    """Published multiply-adds at its input size, in G (``0.714``), or "" where none is quoted."""
    source: str
    variant: str


PUBLISHED: dict[str, Published] = {
    "lenet5": Published(
        "LeNet-5",
        "60,000 (C1–F6)",
        "",
        "LeCun, Bottou, Bengio & Haffner 1998, section II.B",
        "The paper's own network: 32×32 input, C3 wired by Table I (1,516 weights, not 2,416), "
        "trainable S2/S4 subsampling (a coefficient and a bias per map), 1.7159·tanh(2x/3). "
        "Its output layer of fixed Euclidean RBF units is replaced by a trainable linear layer "
        "84 → classes, as in every modern reimplementation (+850 parameters for 10 classes).",
    ),
    "alexnet": Published(
        "AlexNet",
        "61,100,840",
        "0.714",
        "torchvision model card",
        "torchvision's single-GPU AlexNet (Krizhevsky 2014, 64-192-384-256-256 filters), not "
        "the two-GPU 2012 original (96-256-384-384-256, 60 M).",
    ),
    "vgg16": Published(
        "VGG-16",
        "138,357,544",
        "15.47",
        "torchvision model card",
        "Simonyan & Zisserman 2015, configuration D, without batch norm.",
    ),
    "resnet18": Published(
        "ResNet-18",
        "11,689,512",
        "1.814",
        "torchvision model card",
        "He et al. 2016, basic blocks 2-2-2-2, 1×1 projection shortcuts where the shape changes.",
    ),
    "resnet50": Published(
        "ResNet-50",
        "25,557,032",
        "4.089",
        "torchvision model card",
        "He et al. 2016, bottleneck blocks 3-4-6-3, stride on the 3×3 conv (torchvision's v1.5).",
    ),
    "mobilenet_v1": Published(
        "MobileNet V1",
        "≈ 4.2 M",
        "0.569",
        "Howard et al. 2017, Table 8",
        "Width multiplier 1.0, 224×224; the table's second stride-2 at 7×7 is a known typo (1).",
    ),
    "mobilenet_v2": Published(
        "MobileNet V2",
        "3,504,872",
        "0.301",
        "torchvision model card",
        "Sandler et al. 2018, width 1.0, 224×224, ReLU6 and linear bottlenecks.",
    ),
    "textbook": Published(
        "Textbook CNN",
        "",
        "",
        "the primers",
        "32×32×3 → conv 3×3, 16, same → max pool 2 → conv 3×3, 32, same → max pool 2 → flatten "
        "2048 → 128 → classes, ReLU after every conv and the hidden layer.",
    ),
}
"""Published figures and the exact variant built, per name in :data:`NAMES`."""

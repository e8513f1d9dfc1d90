"""Convolution variants side by side: standard, 1×1, depthwise, depthwise-separable, grouped,
dilated and transposed; which channels connect, which pixels a filter touches, what each costs,
and what each does to an image. Every count is read off a built ``nn.Module``.

Multiply-adds count one per weight use (biases left out), as in :mod:`cnnlab.anatomy`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

VARIANTS = (
    "standard",
    "pointwise",
    "depthwise",
    "separable",
    "grouped",
    "dilated",
    "transposed",
)
TITLES = {
    "standard": "Standard",
    "pointwise": "1×1 (pointwise)",
    "depthwise": "Depthwise",
    "separable": "Depthwise-separable",
    "grouped": "Grouped",
    "dilated": "Dilated",
    "transposed": "Transposed (stride 2)",
}
MAX_CHANNELS = 2048


@dataclass(frozen=True)
class Sizes:
    """The learner's sizes: channels in and out, kernel, groups, dilation, input height×width."""

    c_in: int = 256
    c_out: int = 256
    kernel: int = 3
    groups: int = 4
    dilation: int = 2
    height: int = 56
    width: int = 56

    def check(self) -> None:
        """Raise ``ValueError`` in words for sizes no layer could have."""
        for name in ("c_in", "c_out", "kernel", "groups", "dilation", "height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number ≥ 1, got {value!r}.")
        if max(self.c_in, self.c_out) > MAX_CHANNELS:
            raise ValueError(f"Use at most {MAX_CHANNELS} channels (this is about counting).")
        if self.c_in % self.groups or self.c_out % self.groups:
            raise ValueError(
                f"{self.groups} groups must divide both the input channels ({self.c_in}) and "
                f"the output channels ({self.c_out}): each group takes c_in/groups inputs and "
                "makes c_out/groups outputs."
            )
        if self.kernel % 2 == 0 or self.kernel > 11:
            raise ValueError(
                f"Use an odd kernel from 1 to 11 (got {self.kernel}): 'same' padding of k//2 "
                "then keeps the height and width, so every variant is compared on equal terms."
            )


def build(variant: str, s: Sizes) -> nn.Module:
    """The layer for ``variant`` at sizes ``s`` ('same' padding, stride 1; transposed: stride 2)."""
    s.check()
    k, pad = s.kernel, s.kernel // 2
    if variant == "standard":
        return nn.Conv2d(s.c_in, s.c_out, k, padding=pad)
    if variant == "pointwise":
        return nn.Conv2d(s.c_in, s.c_out, 1)
    if variant == "depthwise":
        return nn.Conv2d(s.c_in, s.c_in, k, padding=pad, groups=s.c_in)
    if variant == "separable":
        return nn.Sequential(
            nn.Conv2d(s.c_in, s.c_in, k, padding=pad, groups=s.c_in),
            nn.Conv2d(s.c_in, s.c_out, 1),
        )
    if variant == "grouped":
        return nn.Conv2d(s.c_in, s.c_out, k, padding=pad, groups=s.groups)
    if variant == "dilated":
        return nn.Conv2d(s.c_in, s.c_out, k, padding=pad * s.dilation, dilation=s.dilation)
    if variant == "transposed":
        # Stride 2 with padding (k − 1)//2 and output padding k mod 2: exactly twice the input.
        return nn.ConvTranspose2d(s.c_in, s.c_out, k, 2, (k - 1) // 2, output_padding=k % 2)
    raise ValueError(f"Unknown variant {variant!r}. Choose one of: {', '.join(VARIANTS)}.")


def _output_channels(variant: str, s: Sizes) -> int:
    return s.c_in if variant == "depthwise" else s.c_out


@dataclass(frozen=True)
class Cost:
    """Parameters (weights + biases) and multiply-adds of one variant at the learner's sizes."""

    variant: str
    output_shape: tuple[int, int, int]
    weights: int
    biases: int
    macs: int
    formula: str

    @property
    def params(self) -> int:
        """Weights plus biases."""
        return self.weights + self.biases


def _macs(module: nn.Module, out_hw: tuple[int, int]) -> int:
    total = 0
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            total += (
                m.out_channels
                * math.prod(out_hw)
                * (m.in_channels // m.groups)
                * m.kernel_size[0] ** 2
            )
        elif isinstance(m, nn.ConvTranspose2d):
            # Every input pixel is spread over a k×k patch of every output channel it feeds.
            in_hw = (out_hw[0] // 2, out_hw[1] // 2)
            total += (
                m.in_channels
                * math.prod(in_hw)
                * (m.out_channels // m.groups)
                * m.kernel_size[0] ** 2
            )
    return total


def cost(variant: str, s: Sizes) -> Cost:
    """Parameters and multiply-adds of ``variant`` for one ``c_in``×H×W input."""
    with torch.device("meta"):
        module = build(variant, s)
        out = module(torch.empty(1, s.c_in, s.height, s.width))
    out_shape = tuple(int(n) for n in out.shape[1:])
    weights = sum(p.numel() for n, p in module.named_parameters() if n.endswith("weight"))
    biases = sum(p.numel() for n, p in module.named_parameters() if n.endswith("bias"))
    k, o = s.kernel, _output_channels(variant, s)
    formulas = {
        "standard": f"{o}·{s.c_in}·{k}·{k} + {o}",
        "pointwise": f"{o}·{s.c_in}·1·1 + {o}",
        "depthwise": f"{s.c_in}·1·{k}·{k} + {s.c_in}",
        "separable": f"({s.c_in}·{k}·{k} + {s.c_in}) + ({o}·{s.c_in} + {o})",
        "grouped": f"{o}·({s.c_in}/{s.groups})·{k}·{k} + {o}",
        "dilated": f"{o}·{s.c_in}·{k}·{k} + {o} (dilation adds no weights)",
        "transposed": f"{s.c_in}·{o}·{k}·{k} + {o}",
    }
    return Cost(
        variant, out_shape, weights, biases, _macs(module, out_shape[1:]), formulas[variant]
    )


def connectivity(variant: str, s: Sizes) -> np.ndarray:
    """Boolean (outputs, inputs): which input channels reach which output channels."""
    s.check()
    o = _output_channels(variant, s)
    if variant == "depthwise":
        return np.eye(s.c_in, dtype=bool)
    groups = s.groups if variant == "grouped" else 1
    out_group = np.arange(o) // (o // groups)
    in_group = np.arange(s.c_in) // (s.c_in // groups)
    return out_group[:, None] == in_group[None, :]


def measured_connectivity(module: nn.Module, c_in: int, side: int = 5) -> np.ndarray:
    """The same matrix measured with autograd: output channel o depends on input channel i if
    the gradient of o's sum with respect to i is non-zero (random weights, random input)."""
    module = module.to(torch.float64)
    x = torch.randn(
        1, c_in, side, side, dtype=torch.float64, requires_grad=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    out = module(x)
    rows = []
    for o in range(out.shape[1]):
        (grad,) = torch.autograd.grad(out[0, o].sum(), x, retain_graph=True)
        rows.append(grad[0].abs().sum((1, 2)) > 0)
    return torch.stack(rows).numpy()


def footprint(variant: str, kernel: int, dilation: int) -> np.ndarray:
    """Which input pixels one output pixel reads (for transposed: which output pixels one input
    pixel writes), as a 0/1 grid centred on it."""
    if variant == "pointwise":
        return np.ones((1, 1), dtype=np.int64)
    d = dilation if variant == "dilated" else 1
    span = d * (kernel - 1) + 1
    grid = np.zeros((span, span), dtype=np.int64)
    grid[::d, ::d] = 1
    return grid


def measured_footprint(variant: str, kernel: int, dilation: int) -> np.ndarray:
    """:func:`footprint` measured from the module by autograd on one channel."""
    s = Sizes(1, 1, kernel, 1, dilation, 15, 15)
    module = build(variant, s).to(torch.float64)
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(1.0)
    if variant == "transposed":
        x = torch.zeros(1, 1, 15, 15, dtype=torch.float64)
        x[0, 0, 7, 7] = 1.0
        with torch.no_grad():
            out = module(x)[0, 0] - module(torch.zeros_like(x))[0, 0]
        grid = (out.abs() > 0).numpy().astype(np.int64)
    else:
        x = torch.zeros(1, 1, 15, 15, dtype=torch.float64, requires_grad=True)
        module(x)[0, 0, 7, 7].backward()
        grid = (x.grad[0, 0].abs() > 0).numpy().astype(np.int64)
    rows, cols = np.nonzero(grid)
    return grid[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


# -- on a real image: fixed, readable weights so the learner sees what each variant does ------
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_SOBEL_Y = _SOBEL_X.T.contiguous()
_LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
_BLUR = torch.full((3, 3), 1.0 / 9.0)
# Luminance and two colour-opponent channels: what a 1×1 conv can do (mix channels per pixel).
_OPPONENT = torch.tensor([[0.299, 0.587, 0.114], [0.5, -0.5, 0.0], [0.25, 0.25, -0.5]])


@dataclass(frozen=True)
class Applied:
    """A variant applied to an RGB image: its output maps and what each map is."""

    variant: str
    maps: np.ndarray
    """(channels, H, W) float output of the torch module."""
    names: tuple[str, ...]
    module: nn.Module


def image_module(variant: str, dilation: int = 2) -> tuple[nn.Module, tuple[str, ...]]:
    """A 3-input-channel layer with hand-set weights that show what ``variant`` can do."""
    colours = ("R", "G", "B")
    if variant in ("standard", "dilated"):
        d = dilation if variant == "dilated" else 1
        conv = nn.Conv2d(3, 4, 3, padding=d, dilation=d, bias=False)
        bank = torch.stack([_SOBEL_X, _SOBEL_Y, _LAPLACE, _BLUR])  # (4, 3, 3)
        conv.weight.data = bank[:, None].repeat(1, 3, 1, 1) / 3  # each filter sees all colours
        names = ("vertical edges", "horizontal edges", "Laplacian", "blur")
        return conv, tuple(f"{n} (d={d})" if variant == "dilated" else n for n in names)
    if variant == "pointwise":
        conv = nn.Conv2d(3, 3, 1, bias=False)
        conv.weight.data = _OPPONENT[:, :, None, None].clone()
        return conv, ("luminance", "red − green", "yellow − blue")
    if variant == "depthwise":
        conv = nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False)
        conv.weight.data = _SOBEL_X[None, None].repeat(3, 1, 1, 1)
        return conv, tuple(f"vertical edges of {c} only" for c in colours)
    if variant == "separable":
        depthwise = nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False)
        depthwise.weight.data = _SOBEL_X[None, None].repeat(3, 1, 1, 1)
        pointwise = nn.Conv2d(3, 3, 1, bias=False)
        pointwise.weight.data = _OPPONENT[:, :, None, None].clone()
        names = ("edges of luminance", "edges of red − green", "edges of yellow − blue")
        return nn.Sequential(depthwise, pointwise), names
    if variant == "grouped":
        conv = nn.Conv2d(3, 6, 3, padding=1, groups=3, bias=False)
        conv.weight.data = torch.stack([_SOBEL_X, _SOBEL_Y] * 3)[:, None]
        names = tuple(f"{e} edges of {c}" for c in colours for e in ("vertical", "horizontal"))
        return conv, names
    if variant == "transposed":
        conv = nn.ConvTranspose2d(3, 3, 4, 2, 1, groups=3, bias=False)
        bilinear = torch.tensor([0.25, 0.75, 0.75, 0.25])
        conv.weight.data = torch.outer(bilinear, bilinear)[None, None].repeat(3, 1, 1, 1)
        return conv, tuple(f"{c} upsampled ×2 (bilinear kernel)" for c in colours)
    raise ValueError(f"Unknown variant {variant!r}. Choose one of: {', '.join(VARIANTS)}.")


def apply_to_image(variant: str, rgb: np.ndarray, dilation: int = 2) -> Applied:
    """Run ``variant``'s hand-set layer on an (H, W, 3) uint8 image scaled to 0–1."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"Expected an (H, W, 3) colour image, got shape {rgb.shape}.")
    module, names = image_module(variant, dilation)
    # A copy: for a one-pixel-high image the transposed view is already contiguous, and a read-only
    # array (a cached upload) would reach torch.from_numpy as is.
    x = torch.tensor(rgb.transpose(2, 0, 1), dtype=torch.float32)[None] / 255.0
    with torch.no_grad():
        out = module(x)[0].numpy()
    return Applied(variant, out, names, module)


# -- 1-D and 3-D convolution on real signals and volumes ----------------------------------------
SIGNALS = ("noisy sine", "step", "chirp")
KERNELS_1D = ("moving average", "derivative", "gaussian", "edge detector")


def signal(name: str, n: int = 200, seed: int = 0) -> np.ndarray:
    """A real-looking 1-D signal of ``n`` samples."""
    t = np.linspace(0.0, 1.0, n)
    rng = np.random.default_rng(seed)
    if name == "noisy sine":
        return np.sin(2 * np.pi * 3 * t) + 0.3 * rng.standard_normal(n)
    if name == "step":
        return np.where(t < 0.5, 0.0, 1.0) + 0.05 * rng.standard_normal(n)
    if name == "chirp":
        # Audio-like sweep: the frequency rises from 2 to 30 cycles over the window.
        return np.sin(2 * np.pi * (2 * t + 14 * t**2))
    raise ValueError(f"Unknown signal {name!r}. Choose one of: {', '.join(SIGNALS)}.")


def kernel_1d(name: str, size: int) -> np.ndarray:
    """A 1-D kernel of odd ``size`` (derivative and edge detector ignore the size's interior)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"Use an odd kernel size, got {size}.")
    if name == "moving average":
        return np.full(size, 1.0 / size)
    if name == "gaussian":
        x = np.arange(size) - size // 2
        g = np.exp(-(x**2) / (2 * max(size / 4, 0.5) ** 2))
        return g / g.sum()
    if name == "derivative":
        k = np.zeros(max(size, 3))
        k[0], k[-1] = -0.5, 0.5
        return k
    if name == "edge detector":
        half = max(size, 3) // 2
        return np.concatenate([-np.ones(half), [0.0], np.ones(half)]) / half
    raise ValueError(f"Unknown kernel {name!r}. Choose one of: {', '.join(KERNELS_1D)}.")


def conv1d(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Valid cross-correlation of a signal with a kernel, computed by ``F.conv1d``."""
    signal_ = torch.as_tensor(x, dtype=torch.float64)[None, None]
    out = F.conv1d(signal_, torch.as_tensor(kernel, dtype=torch.float64)[None, None])
    return out[0, 0].numpy()


def moving_square(frames: int = 8, side: int = 24, size: int = 6, speed: int = 2) -> np.ndarray:
    """A (T, H, W) volume: a bright square moving right by ``speed`` pixels a frame."""
    volume = np.zeros((frames, side, side))
    top = (side - size) // 2
    for t in range(frames):
        left = 1 + t * speed
        volume[t, top : top + size, left : left + size] = 1.0
    return volume


KERNELS_3D = ("motion (frame difference)", "spatio-temporal blur", "moving edge")


def kernel_3d(name: str) -> np.ndarray:
    """A (depth, height, width) 3-D kernel."""
    if name == "motion (frame difference)":
        k = np.zeros((2, 3, 3))
        k[0, 1, 1], k[1, 1, 1] = -1.0, 1.0  # next frame minus this frame, pixel by pixel
        return k
    if name == "spatio-temporal blur":
        return np.full((3, 3, 3), 1.0 / 27.0)
    if name == "moving edge":
        # Vertical-edge detector that also differences in time: fires on edges that move.
        sobel = _SOBEL_X.numpy() / 4
        return np.stack([-sobel, sobel])
    raise ValueError(f"Unknown kernel {name!r}. Choose one of: {', '.join(KERNELS_3D)}.")


def conv3d(volume: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Valid 3-D cross-correlation of a (T, H, W) volume, computed by ``F.conv3d``."""
    v = torch.as_tensor(volume, dtype=torch.float64)[None, None]
    out = F.conv3d(v, torch.as_tensor(kernel, dtype=torch.float64)[None, None])
    return out[0, 0].numpy()

"""Pooling: max, average, Lp (power-average) and global pooling, through torch and by hand.

Every number comes from PyTorch (``F.max_pool2d``, ``F.avg_pool2d``, ``F.lp_pool2d``, the adaptive
pools) via the modules built in :func:`pool_module`. :func:`reference_pool2d` recomputes the same
result with plain loops over windows and records each window (which inputs it read, which
maximum it picked, what it averaged), which is what the step-by-step view shows; the tests check
that both agree, including which element max pooling selects.

Conventions that follow PyTorch exactly (checked empirically on torch 2.13 and in the tests):

* Output size per axis: ``floor((n + 2p - d(k-1) - 1 + (s-1 if ceil_mode)) / s) + 1``; in ceil
  mode the last window is dropped when it would start in the right padding.
* Padding may be at most ``k // 2`` per axis (torch checks the *kernel* size, not the dilated one).
* Max pooling treats padding as −∞ and, on ties, selects the first maximum in row-major order.
* Average pooling divides by the window area clipped to the padded input
  (``count_include_pad=True``) or by the number of real inputs in the window (``False``).
* Lp pooling is ``(mean of x^p over the window × window area)^(1/p)`` — that is how torch computes
  it. For a full window this is the Lp norm ``(Σ x^p)^(1/p)``; for the partial windows that
  ``ceil_mode`` creates, torch rescales as if the missing positions held the window's mean.
  ``F.lp_pool2d`` has no padding argument: with padding > 0 the engine runs the very same formula
  through ``F.avg_pool2d`` with that padding and ``count_include_pad=True``, i.e. padded positions
  count as zeros, which add nothing to ``Σ x^p``. With padding 0 it calls ``F.lp_pool2d`` itself.
  For negative inputs and odd ``p`` the window sum can be negative and torch returns NaN; the
  pages only pool non-negative values (pixels, integers 0–9, ReLU outputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

KINDS: tuple[str, ...] = ("max", "avg", "lp", "global_avg", "global_max")
KIND_LABELS: dict[str, str] = {
    "max": "Max",
    "avg": "Average",
    "lp": "L2 / Lp",
    "global_avg": "Global average",
    "global_max": "Global max",
}
LOCAL_KINDS: tuple[str, ...] = ("max", "avg", "lp")

Pair = tuple[int, int]


def _pair(value: int | tuple[int, int], name: str) -> Pair:
    """Turn an int or a (height, width) pair into a pair of Python ints."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be one number or a (height, width) pair, got {value!r}.")
        return int(value[0]), int(value[1])
    return int(value), int(value)


@dataclass(frozen=True)
class PoolSpec:
    """One pooling layer's settings; ints mean the same value for height and width.

    ``stride=None`` means "same as the window", PyTorch's default. ``dilation`` is only
    supported by max pooling, ``count_include_pad`` only matters for average pooling and
    ``norm_type`` (p) only for Lp pooling. Global kinds ignore the window settings.
    """

    kind: str = "max"
    kernel: int | tuple[int, int] = 2
    stride: int | tuple[int, int] | None = None
    padding: int | tuple[int, int] = 0
    dilation: int | tuple[int, int] = 1
    ceil_mode: bool = False
    count_include_pad: bool = True
    norm_type: float = 2.0
    kernel_hw: Pair = field(init=False, repr=False, compare=False)
    stride_hw: Pair = field(init=False, repr=False, compare=False)
    padding_hw: Pair = field(init=False, repr=False, compare=False)
    dilation_hw: Pair = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            choices = ", ".join(KINDS)
            raise ValueError(f"Unknown pooling kind {self.kind!r}: choose one of {choices}.")
        kernel = _pair(self.kernel, "The window")
        stride = kernel if self.stride is None else _pair(self.stride, "The stride")
        # frozen dataclass: derived fields are set once here, so every caller sees pairs.
        object.__setattr__(self, "kernel_hw", kernel)
        object.__setattr__(self, "stride_hw", stride)
        object.__setattr__(self, "padding_hw", _pair(self.padding, "The padding"))
        object.__setattr__(self, "dilation_hw", _pair(self.dilation, "The dilation"))

    @property
    def is_global(self) -> bool:
        """Whether the window is the whole input (adaptive pooling to 1×1)."""
        return self.kind in ("global_avg", "global_max")

    @property
    def label(self) -> str:
        """Human name, e.g. ``Max`` or ``L3`` for Lp pooling with p = 3."""
        if self.kind == "lp":
            p = self.norm_type
            return f"L{int(p)}" if float(p).is_integer() else f"L{p:g}"
        return KIND_LABELS[self.kind]


def output_size(
    n: int, kernel: int, stride: int, padding: int, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """Number of window positions along one axis, exactly as PyTorch computes it (may be ≤ 0)."""
    span = dilation * (kernel - 1) + 1
    numerator = n + 2 * padding - span + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1  # floor division, like torch's div_rtn
    # In ceil mode torch drops a last window that would start inside the right padding.
    if ceil_mode and (out - 1) * stride >= n + padding:
        out -= 1
    return out


def check_spec(spec: PoolSpec, height: int, width: int) -> tuple[int, int]:
    """Raise ``ValueError`` (in words a learner understands) exactly when torch would refuse;
    otherwise return the output ``(height, width)``."""
    if height < 1 or width < 1:
        raise ValueError(f"The input is empty ({height}×{width}); pooling needs at least 1×1.")
    if spec.is_global:
        return 1, 1
    if spec.kind == "lp" and not (math.isfinite(spec.norm_type) and spec.norm_type >= 1):
        raise ValueError(
            f"Lp pooling needs a finite p ≥ 1 (p = 1 sums the window, p = 2 is the L2 norm, "
            f"a large p approaches max pooling); got p = {spec.norm_type:g}."
        )
    if spec.kind != "max" and spec.dilation_hw != (1, 1):
        raise ValueError(
            f"Dilation is only available for max pooling in PyTorch; set dilation to 1 for "
            f"{KIND_LABELS[spec.kind].lower()} pooling."
        )
    if spec.kind != "avg" and not spec.count_include_pad:
        raise ValueError("'Count padding in the average' only applies to average pooling.")
    out: list[int] = []
    for axis, n in (("height", height), ("width", width)):
        i = 0 if axis == "height" else 1
        k, s, p, d = (
            spec.kernel_hw[i],
            spec.stride_hw[i],
            spec.padding_hw[i],
            spec.dilation_hw[i],
        )
        if k < 1:
            raise ValueError(f"The window {axis} must be at least 1, got {k}.")
        if s < 1:
            raise ValueError(f"The stride must be at least 1 (a step of {s} never moves), got {s}.")
        if d < 1:
            raise ValueError(f"The dilation must be at least 1 (1 = no gaps), got {d}.")
        if p < 0:
            raise ValueError(f"The padding cannot be negative, got {p}.")
        if p > k // 2:
            raise ValueError(
                f"Padding {p} is more than half the window ({k}): PyTorch allows at most "
                f"{k} // 2 = {k // 2}, because otherwise a window could sit entirely in the "
                f"padding and see no input at all. Use padding ≤ {k // 2} or a larger window."
            )
        size = output_size(n, k, s, p, d, spec.ceil_mode)
        if size < 1:
            span = d * (k - 1) + 1
            what = f"{k}" if d == 1 else f"{k} with dilation {d}, so it spans {span}"
            raise ValueError(
                f"The window ({what}) is larger than the padded input {axis} "
                f"({n} + 2×{p} = {n + 2 * p}), so there is no place to put it. Use a smaller "
                f"window or dilation, more padding, or a larger input."
            )
        out.append(size)
    return out[0], out[1]


class PaddedLPPool2d(nn.Module):
    """Lp pooling with zero padding: torch's own ``lp_pool2d`` formula run through
    ``avg_pool2d`` with padding, because ``F.lp_pool2d`` has no padding argument."""

    def __init__(self, norm_type: float, kernel: Pair, stride: Pair, padding: Pair, ceil: bool):
        super().__init__()
        self.norm_type, self.kernel, self.stride = norm_type, kernel, stride
        self.padding, self.ceil_mode = padding, ceil

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same operations as ``torch.nn.functional.lp_pool2d``, plus the padding."""
        kh, kw = self.kernel
        out = F.avg_pool2d(
            x.pow(self.norm_type),
            self.kernel,
            self.stride,
            self.padding,
            self.ceil_mode,
            count_include_pad=True,  # padded positions are zeros: they add nothing to Σ x^p
        )
        return (torch.sign(out) * F.relu(torch.abs(out))).mul(kh * kw).pow(1.0 / self.norm_type)


def pool_module(spec: PoolSpec) -> nn.Module:
    """The PyTorch module that computes ``spec`` (it has no learnable parameters)."""
    k, s, p, d = spec.kernel_hw, spec.stride_hw, spec.padding_hw, spec.dilation_hw
    if spec.kind == "max":
        return nn.MaxPool2d(k, s, p, d, ceil_mode=spec.ceil_mode)
    if spec.kind == "avg":
        return nn.AvgPool2d(k, s, p, spec.ceil_mode, spec.count_include_pad)
    if spec.kind == "lp" and p == (0, 0):
        return nn.LPPool2d(spec.norm_type, k, s, spec.ceil_mode)
    if spec.kind == "lp":
        return PaddedLPPool2d(spec.norm_type, k, s, p, spec.ceil_mode)
    if spec.kind == "global_avg":
        return nn.AdaptiveAvgPool2d(1)
    return nn.AdaptiveMaxPool2d(1)


def parameter_count(module: nn.Module) -> int:
    """Number of learnable numbers in ``module``: ``sum(p.numel() for p in parameters)``."""
    return sum(p.numel() for p in module.parameters())


def _as_nchw(x: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, int]:
    """Make a 4-D float tensor from a 2-D, 3-D or 4-D input; also return the original rank."""
    # Copy numpy input: arrays may be read-only (cached, decoded images), which torch warns about.
    t = torch.from_numpy(np.array(x)) if isinstance(x, np.ndarray) else torch.as_tensor(x)
    if t.ndim not in (2, 3, 4):
        raise ValueError(
            f"Pooling expects an image (H×W), channels (C×H×W) or a batch (N×C×H×W); "
            f"got an array with {t.ndim} dimensions."
        )
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError("The input contains NaN or infinity; pooling needs finite numbers.")
    rank = t.ndim
    while t.ndim < 4:
        t = t.unsqueeze(0)
    return t, rank


def _restore_rank(t: torch.Tensor, rank: int) -> torch.Tensor:
    """Drop the leading dimensions that :func:`_as_nchw` added."""
    return t.reshape(t.shape[4 - rank :]) if rank < 4 else t


def pool2d(x: np.ndarray | torch.Tensor, spec: PoolSpec) -> torch.Tensor:
    """Pool ``x`` (H×W, C×H×W or N×C×H×W) with PyTorch; raises ``ValueError`` on bad settings."""
    t, rank = _as_nchw(x)
    check_spec(spec, t.shape[-2], t.shape[-1])
    with torch.no_grad():
        out = pool_module(spec)(t)
    return _restore_rank(out, rank)


def max_pool2d_with_indices(
    x: np.ndarray | torch.Tensor, spec: PoolSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """Max (or global max) pooling with PyTorch's ``return_indices``: flat ``row * W + col``."""
    if spec.kind not in ("max", "global_max"):
        raise ValueError("Only max pooling selects an element; average and Lp use every input.")
    t, rank = _as_nchw(x)
    check_spec(spec, t.shape[-2], t.shape[-1])
    if spec.kind == "global_max":
        values, indices = F.adaptive_max_pool2d(t, 1, return_indices=True)
    else:
        k, s, p, d = spec.kernel_hw, spec.stride_hw, spec.padding_hw, spec.dilation_hw
        values, indices = F.max_pool2d(t, k, s, p, d, spec.ceil_mode, return_indices=True)
    return _restore_rank(values, rank), _restore_rank(indices, rank)


# ---------------------------------------------------------------------------------------------
# Reference implementation: loops over windows, recording each one for the step-by-step view.


@dataclass(frozen=True)
class WindowStep:
    """One window of the reference computation: where it sits, what it read, what it gave.

    ``rows``/``cols`` are the input indices the window visits (with dilation gaps); indices
    below 0 or past the input are padding. ``cells`` are the visited positions that are real
    inputs, row-major, and ``values`` their values.
    """

    out_row: int
    out_col: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    cells: tuple[tuple[int, int], ...]
    values: tuple[float, ...]
    result: float
    argmax: tuple[int, int] | None
    divisor: int | None
    padding_count: int
    expression: str


@dataclass(frozen=True)
class PoolTrace:
    """The reference result for a 2-D input plus every window in row-major output order."""

    spec: PoolSpec
    input: np.ndarray
    output: np.ndarray
    steps: tuple[WindowStep, ...]


def format_number(v: float) -> str:
    """Short number for expressions: integers without decimals, others with up to 3."""
    if math.isinf(v):
        return "−∞" if v < 0 else "∞"
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _terms(values: list[float], zeros: int, limit: int = 12) -> list[str]:
    """Formatted terms, padding zeros last; long lists are shortened with an ellipsis."""
    terms = [format_number(v) for v in values] + ["0"] * zeros
    if len(terms) > limit:
        terms = [*terms[: limit - 2], "…", terms[-1]]
    return terms


def _window_step(x: np.ndarray, spec: PoolSpec, oh: int, ow: int) -> WindowStep:
    """Compute one output cell by hand, following the PyTorch CPU kernels line by line."""
    height, width = x.shape
    if spec.is_global:
        rows, cols = tuple(range(height)), tuple(range(width))
        kh, kw, h0, w0, h1, w1 = height, width, 0, 0, height, width
    else:
        (kh, kw), (sh, sw) = spec.kernel_hw, spec.stride_hw
        (ph, pw), (dh, dw) = spec.padding_hw, spec.dilation_hw
        h0, w0 = oh * sh - ph, ow * sw - pw
        rows = tuple(h0 + i * dh for i in range(kh))
        cols = tuple(w0 + j * dw for j in range(kw))
        # The window area that counts for average/Lp: clipped to the *padded* input (this only
        # bites in ceil mode, where the last window may hang past the padding).
        h1, w1 = min(h0 + kh, height + ph), min(w0 + kw, width + pw)
    cells = tuple((r, c) for r in rows if 0 <= r < height for c in cols if 0 <= c < width)
    values = tuple(float(x[r, c]) for r, c in cells)
    pad_area = (h1 - h0) * (w1 - w0)

    if spec.kind in ("max", "global_max") and not cells:
        # Dilation can make every visited position padding; torch then outputs −∞ (its index
        # points outside the input), and so do we rather than invent a number.
        return WindowStep(
            oh, ow, rows, cols, cells, values, float("-inf"), None, None, 0,
            "max() over padding only = −∞ (the dilation gaps skip every real input)",
        )  # fmt: skip
    if spec.kind in ("max", "global_max"):
        best = 0
        for i, v in enumerate(values):
            if v > values[best]:  # strict: ties keep the first maximum, as torch does
                best = i
        result = values[best]
        note = " (padding is ignored: it never wins)" if len(cells) < len(rows) * len(cols) else ""
        shown = ", ".join(_terms(list(values), 0, limit=16))
        return WindowStep(
            oh, ow, rows, cols, cells, values, result, cells[best], None, 0,
            f"max({shown}) = {format_number(result)}{note}",
        )  # fmt: skip

    inside_h = min(h1, height) - max(h0, 0)
    inside_w = min(w1, width) - max(w0, 0)
    if spec.kind == "global_avg":
        divisor = len(values)
    elif spec.kind == "avg" and not spec.count_include_pad:
        divisor = inside_h * inside_w
    else:
        divisor = pad_area
    zeros = divisor - len(values) if spec.kind in ("avg", "global_avg") else pad_area - len(values)

    if spec.kind in ("avg", "global_avg"):
        total = math.fsum(values)
        result = total / divisor
        terms = " + ".join(_terms(list(values), zeros))
        expression = f"({terms}) / {divisor} = {format_number(result)}"
        if zeros:
            expression += f"  ({zeros} padding zero{'s' if zeros > 1 else ''} counted)"
        return WindowStep(
            oh, ow, rows, cols, cells, values, result, None, divisor, zeros, expression
        )

    p = spec.norm_type
    powered = math.fsum(v**p for v in values)
    area = kh * kw
    mean = powered / pad_area
    result = (mean * area) ** (1.0 / p) if mean >= 0 else float("nan")
    p_txt = format_number(p)
    sup = {"1": "¹", "2": "²", "3": "³", "4": "⁴"}.get(p_txt, f"^{p_txt}")
    terms = " + ".join(t if t == "…" else f"{t}{sup}" for t in _terms(list(values), zeros))
    root = "√" if p == 2 else f"{p_txt}-th root of "
    expression = f"{root}({terms}) = {format_number(result)}"
    if pad_area != area:
        expression = (
            f"{root}(({terms}) × {area}/{pad_area}) = {format_number(result)}  "
            f"(a partial window: PyTorch scales the sum up to the full {area}-cell window)"
        )
    return WindowStep(oh, ow, rows, cols, cells, values, result, None, pad_area, zeros, expression)


def reference_pool2d(x: np.ndarray, spec: PoolSpec) -> PoolTrace:
    """Pool a 2-D array with plain loops, recording every window (slow; for small grids)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"The step-by-step view pools one 2-D grid; got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise ValueError("The input contains NaN or infinity; pooling needs finite numbers.")
    out_h, out_w = check_spec(spec, *x.shape)
    steps = tuple(_window_step(x, spec, i, j) for i in range(out_h) for j in range(out_w))
    output = np.array([s.result for s in steps], dtype=np.float64).reshape(out_h, out_w)
    return PoolTrace(spec, x, output, steps)


def spec_for_kind(base: PoolSpec, kind: str) -> PoolSpec:
    """``base``'s settings for another pooling kind, dropping what that kind cannot take
    (dilation is max-only, ``count_include_pad`` is average-only)."""
    return PoolSpec(
        kind=kind,
        kernel=base.kernel_hw,
        stride=base.stride_hw,
        padding=base.padding_hw,
        dilation=base.dilation_hw if kind == "max" else 1,
        ceil_mode=base.ceil_mode,
        count_include_pad=base.count_include_pad if kind == "avg" else True,
        norm_type=base.norm_type,
    )


@dataclass(frozen=True)
class HeadComparison:
    """Parameter counts of two classifier heads on a C×H×W feature map, from real modules."""

    channels: int
    height: int
    width: int
    classes: int
    flatten_fc: int
    gap_fc: int
    pool_params: int

    @property
    def ratio(self) -> float:
        """How many times more parameters flatten + FC needs than global average pooling + FC."""
        return self.flatten_fc / self.gap_fc


def classifier_heads(
    channels: int, height: int, width: int, classes: int
) -> tuple[nn.Sequential, nn.Sequential]:
    """Flatten→Linear(C·H·W, n) and GlobalAvgPool→Flatten→Linear(C, n), on the meta device
    (shapes only, no memory: the flatten head of a 512×7×7 map alone is 25 million weights)."""
    for name, v in (("channels", channels), ("height", height), ("width", width)):
        if v < 1:
            raise ValueError(f"The feature map's {name} must be at least 1, got {v}.")
    if classes < 1:
        raise ValueError(f"A classifier needs at least 1 class, got {classes}.")
    flatten = nn.Sequential(
        nn.Flatten(), nn.Linear(channels * height * width, classes, device="meta")
    )
    gap = nn.Sequential(
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes, device="meta")
    )
    return flatten, gap


def compare_heads(channels: int, height: int, width: int, classes: int) -> HeadComparison:
    """Count the parameters of both classifier heads (weights + biases) from the modules."""
    flatten, gap = classifier_heads(channels, height, width, classes)
    return HeadComparison(
        channels,
        height,
        width,
        classes,
        flatten_fc=parameter_count(flatten),
        gap_fc=parameter_count(gap),
        pool_params=parameter_count(gap[0]),
    )

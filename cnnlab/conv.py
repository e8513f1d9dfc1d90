"""2-D convolution as deep-learning libraries compute it, plus the arithmetic written out.

All feature maps come from ``torch.nn.functional.conv2d``. Padding is applied first with
``F.pad`` (so zero, reflect, replicate and circular modes share one path, exactly as
``nn.Conv2d(padding_mode=...)`` does), then ``F.conv2d`` runs with no padding of its own.

:func:`reference_conv2d` and :func:`window_at` are plain Python loops: they exist for the
step-by-step view (every product and the sum, as computed) and as a second opinion in the tests.

Shapes follow PyTorch: an input is ``(C, H, W)``; weights are ``(O, C / groups, kh, kw)``;
``groups=1`` sums every input channel into each output (a multi-channel filter), ``groups=C``
gives each channel its own kernel (depthwise, "channel by channel").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.kernels import embed
from cnnlab.wording import plural

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
"""Border modes, named as ``nn.Conv2d(padding_mode=...)`` names them."""

PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]


@dataclass(frozen=True)
class ConvSettings:
    """Hyper-parameters of one convolution, as a learner sets them on the page.

    ``padding`` is ``"valid"`` (none), ``"same"`` (output as large as the input; stride 1
    only, as in PyTorch) or a number of cells added on every side. ``flip=True`` computes a
    true convolution (kernel rotated by 180°) instead of PyTorch's cross-correlation. ``bias``
    is added to every output value and ``relu`` then replaces negatives by 0.
    """

    stride: int = 1
    padding: int | Literal["valid", "same"] = 0
    padding_mode: PaddingMode = "zeros"
    dilation: int = 1
    flip: bool = False
    relu: bool = False


@dataclass(frozen=True)
class Padding:
    """Cells added on each side of the input."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def is_zero(self) -> bool:
        """True when nothing is added."""
        return not (self.top or self.bottom or self.left or self.right)


def pad_amounts(kernel_hw: tuple[int, int], settings: ConvSettings) -> Padding:
    """How many cells each side gets; ``"same"`` puts the odd extra cell bottom/right like torch."""
    if settings.padding == "valid":
        return Padding(0, 0, 0, 0)
    if settings.padding == "same":
        total_h = settings.dilation * (kernel_hw[0] - 1)
        total_w = settings.dilation * (kernel_hw[1] - 1)
        return Padding(total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2)
    p = int(settings.padding)
    return Padding(p, p, p, p)


def output_size(n: int, kernel: int, pad_total: int, stride: int, dilation: int) -> int:
    """Output length on one axis: ``⌊(n + padding − dilation·(kernel − 1) − 1) / stride⌋ + 1``."""
    return (n + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def check_settings(
    input_hw: tuple[int, int], kernel_hw: tuple[int, int], settings: ConvSettings
) -> Padding:
    """Raise ``ValueError`` (a sentence a learner can act on) for settings torch would refuse.

    Returns the padding on each side when the settings are valid.
    """
    h, w = input_hw
    kh, kw = kernel_hw
    s, d = settings.stride, settings.dilation
    if h < 1 or w < 1:
        raise ValueError(f"The input is {h}×{w}: it needs at least one pixel.")
    if kh < 1 or kw < 1:
        raise ValueError(f"The kernel is {kh}×{kw}: it needs at least one cell.")
    if not (isinstance(s, int | np.integer) and s >= 1):
        raise ValueError(f"The stride must be a whole number of at least 1, not {s}.")
    if not (isinstance(d, int | np.integer) and d >= 1):
        raise ValueError(f"The dilation must be a whole number of at least 1, not {d}.")
    if settings.padding_mode not in PADDING_MODES:
        raise ValueError(
            f"Unknown padding mode {settings.padding_mode!r}: use one of "
            f"{', '.join(PADDING_MODES)}."
        )
    if settings.padding == "same" and s != 1:
        raise ValueError(
            f"'Same' padding keeps the output as large as the input, which only works with "
            f"stride 1 (the stride is {s}). Set the stride to 1 or choose a number of padding "
            "cells."
        )
    if isinstance(settings.padding, str) and settings.padding not in ("valid", "same"):
        raise ValueError(f"Padding must be 'valid', 'same' or a number, not {settings.padding!r}.")
    if not isinstance(settings.padding, str) and not (
        isinstance(settings.padding, int | np.integer) and settings.padding >= 0
    ):
        raise ValueError(f"Padding must be a whole number of at least 0, not {settings.padding}.")
    pad = pad_amounts(kernel_hw, settings)
    largest = max(pad.top, pad.bottom, pad.left, pad.right)
    if settings.padding_mode == "reflect" and (
        max(pad.top, pad.bottom) >= h or max(pad.left, pad.right) >= w
    ):
        raise ValueError(
            f"Reflect padding of {largest} cells needs an input larger than {largest} pixels on "
            f"each side (mirroring never repeats the edge pixel), but the input is {h}×{w}. "
            "Use less padding or another padding mode."
        )
    if settings.padding_mode == "circular" and (
        max(pad.top, pad.bottom) > h or max(pad.left, pad.right) > w
    ):
        raise ValueError(
            f"Circular padding of {largest} cells would wrap around the {h}×{w} input more than "
            "once. Use at most as many padding cells as the input is wide and tall."
        )
    span_h, span_w = d * (kh - 1) + 1, d * (kw - 1) + 1
    padded_h, padded_w = h + pad.top + pad.bottom, w + pad.left + pad.right
    if span_h > padded_h or span_w > padded_w:
        dilated = f" (with dilation {d} it spans {span_h}×{span_w} pixels)" if d > 1 else ""
        raise ValueError(
            f"The {kh}×{kw} kernel{dilated} is larger than the padded input "
            f"({padded_h}×{padded_w}), so it fits nowhere and there is no output. Use a smaller "
            "kernel or dilation, or add padding."
        )
    return pad


def output_shape(
    input_hw: tuple[int, int], kernel_hw: tuple[int, int], settings: ConvSettings
) -> tuple[int, int]:
    """``(H_out, W_out)`` of the feature map; raises ``ValueError`` for impossible settings."""
    pad = check_settings(input_hw, kernel_hw, settings)
    return (
        output_size(input_hw[0], kernel_hw[0], pad.top + pad.bottom, settings.stride,
                    settings.dilation),
        output_size(input_hw[1], kernel_hw[1], pad.left + pad.right, settings.stride,
                    settings.dilation),
    )  # fmt: skip


def _as_weight(weight: np.ndarray, flip: bool) -> np.ndarray:
    weight = np.asarray(weight, dtype=np.float64)
    # True convolution is cross-correlation with the kernel rotated by 180°.
    return weight[..., ::-1, ::-1].copy() if flip else weight


def _check_shapes(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, groups: int) -> None:
    if x.ndim != 3:
        raise ValueError(f"The input must be (channels, height, width), not shape {x.shape}.")
    if weight.ndim != 4:
        raise ValueError(f"Weights must be (out, in / groups, kh, kw), not shape {weight.shape}.")
    c, o = x.shape[0], weight.shape[0]
    if groups < 1 or c % groups or o % groups:
        raise ValueError(f"{groups} groups must divide both the {c} input and {o} output channels.")
    if weight.shape[1] != c // groups:
        raise ValueError(
            f"Each filter needs {plural(c // groups, 'channel')} to match the {c}-channel input, "
            "but "
            f"has {weight.shape[1]}."
        )
    if bias is not None and np.asarray(bias).shape != (o,):
        raise ValueError(f"There must be one bias per filter ({o}), not {np.asarray(bias).shape}.")
    if not np.all(np.isfinite(weight)):
        raise ValueError("The kernel contains NaN or infinity: every weight must be a number.")
    if bias is not None and not np.all(np.isfinite(bias)):
        raise ValueError("The bias must be a finite number.")


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    settings: ConvSettings | None = None,
    groups: int = 1,
) -> np.ndarray:
    """Feature maps ``(O, H_out, W_out)`` of input ``(C, H, W)`` via ``F.pad`` + ``F.conv2d``.

    Computes in float64 so the step-by-step sums (also float64) show the same numbers.
    """
    settings = settings or ConvSettings()
    x = np.asarray(x)
    weight = _as_weight(weight, settings.flip)
    _check_shapes(x, weight, bias, groups)
    pad = check_settings((x.shape[1], x.shape[2]), (weight.shape[2], weight.shape[3]), settings)
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))[None]
    if not pad.is_zero:
        mode = "constant" if settings.padding_mode == "zeros" else settings.padding_mode
        t = F.pad(t, (pad.left, pad.right, pad.top, pad.bottom), mode=mode)
    out = F.conv2d(
        t,
        torch.tensor(weight),  # a copy: numpy views may have negative strides
        None if bias is None else torch.as_tensor(np.asarray(bias, dtype=np.float64)),
        stride=settings.stride,
        dilation=settings.dilation,
        groups=groups,
    )
    if settings.relu:
        out = F.relu(out)
    return out[0].numpy()


def source_index(i: int, n: int, mode: PaddingMode) -> int | None:
    """Which input cell a (possibly padded) coordinate ``i`` reads on an axis of length ``n``.

    ``None`` means a zero-padding cell. Reflect mirrors without repeating the edge
    (``-1 → 1``), replicate repeats the edge (``-1 → 0``), circular wraps (``-1 → n - 1``).
    """
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return None
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    if mode == "circular":
        return i % n
    return -i if i < 0 else 2 * (n - 1) - i


@dataclass(frozen=True)
class Term:
    """One product of the window: weight × input value, with where the value came from."""

    row: int
    col: int
    weight: float
    value: float
    source: tuple[int, int] | None

    @property
    def padded(self) -> bool:
        """True when the cell lies in the padded border, outside the real input."""
        return self.source != (self.row, self.col)

    @property
    def product(self) -> float:
        """``weight · value``."""
        return self.weight * self.value


@dataclass(frozen=True)
class Window:
    """The kernel placed over one channel at one output position, with the sum of products.

    ``terms`` are in reading order (kernel row by row). ``row``/``col`` of a term are input
    coordinates, negative or past the edge for padded cells.
    """

    out_row: int
    out_col: int
    terms: tuple[Term, ...]

    @property
    def total(self) -> float:
        """The sum of products, added left to right in reading order."""
        total = 0.0
        for term in self.terms:
            total += term.product
        return total


def window_at(
    channel: np.ndarray,
    kernel: np.ndarray,
    settings: ConvSettings,
    out_row: int,
    out_col: int,
) -> Window:
    """The terms of output ``(out_row, out_col)`` for one input channel and one 2-D kernel.

    The kernel is flipped first when ``settings.flip`` is set, like :func:`conv2d`.
    """
    channel = np.asarray(channel, dtype=np.float64)
    kernel = _as_weight(kernel, settings.flip)
    h, w = channel.shape
    kh, kw = kernel.shape
    pad = check_settings((h, w), (kh, kw), settings)
    rows, cols = output_shape((h, w), (kh, kw), settings)
    if not (0 <= out_row < rows and 0 <= out_col < cols):
        raise ValueError(
            f"Output position ({out_row}, {out_col}) is outside the {rows}×{cols} feature map."
        )
    s, d = settings.stride, settings.dilation
    terms = []
    for m in range(kh):
        for n in range(kw):
            r = out_row * s - pad.top + m * d
            c = out_col * s - pad.left + n * d
            sr = source_index(r, h, settings.padding_mode)
            sc = source_index(c, w, settings.padding_mode)
            source = None if sr is None or sc is None else (sr, sc)
            value = 0.0 if source is None else float(channel[source])
            terms.append(Term(r, c, float(kernel[m, n]), value, source))
    return Window(out_row, out_col, tuple(terms))


def busiest_patch(x: np.ndarray, side: int) -> tuple[int, int]:
    """``(top, left)`` of the ``side``×``side`` crop of ``x`` ``(C, H, W)`` whose pixels vary most.

    Where the step-by-step view starts: in a flat or dark crop (a photo's centre is often one)
    every product is about zero and the sum teaches nothing. The spread is the variance of the
    channel mean over the crop; of equal crops the one nearest the image's centre wins, so a
    uniform image starts in the middle. ``side`` is clipped to the image.
    """
    h, w = int(x.shape[1]), int(x.shape[2])
    side = max(1, min(side, h, w))
    gray = torch.from_numpy(np.asarray(x, dtype=np.float64).mean(axis=0))[None, None]
    mean = F.avg_pool2d(gray, side, stride=1)[0, 0]
    variance = (F.avg_pool2d(gray * gray, side, stride=1)[0, 0] - mean * mean).numpy()
    # Rounding leaves crops of equal variance a few ulps apart: compare with a tolerance.
    best = variance >= variance.max() - 1e-9 * max(1.0, float(variance.max()))
    rows, cols = np.nonzero(best)
    centre = ((h - side) / 2, (w - side) / 2)
    nearest = np.argmin((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2)
    return int(rows[nearest]), int(cols[nearest])


def reference_conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    settings: ConvSettings | None = None,
    groups: int = 1,
) -> np.ndarray:
    """The same result as :func:`conv2d` from explicit loops over :func:`window_at` (slow)."""
    settings = settings or ConvSettings()
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    _check_shapes(x, weight, bias, groups)
    out_c, per_group = weight.shape[0], weight.shape[1]
    rows, cols = output_shape((x.shape[1], x.shape[2]), weight.shape[2:], settings)
    out = np.zeros((out_c, rows, cols))
    for o in range(out_c):
        group = o // (out_c // groups)
        for i in range(rows):
            for j in range(cols):
                total = 0.0 if bias is None else float(bias[o])
                for k in range(per_group):
                    channel = x[group * per_group + k]
                    total += window_at(channel, weight[o, k], settings, i, j).total
                out[o, i, j] = max(total, 0.0) if settings.relu else total
    return out


def format_number(value: float, digits: int = 6) -> str:
    """Compact text for a number: ``12``, ``-0.5``, ``0.111111``; minus signs as ``−``."""
    if value == 0:
        return "0"  # also turns -0.0 into 0: a learner has no use for a signed zero
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}×10^{int(exponent)}"
    return text.replace("-", "−")


def shown_exactly(value: float, digits: int = 6) -> bool:
    """True when :func:`format_number` shows ``value`` without rounding."""
    return value == 0 or float(f"{value:.{digits}g}") == value


def sum_of_products(terms: tuple[Term, ...] | list[Term], total: float) -> str:
    """``1·3 + 0·5 + (−1)·7 = −4``: every term as weight·value, then the computed sum.

    The last sign is ``≈`` when some number shown is rounded, so the text never claims an
    equality the shown digits do not satisfy.
    """
    parts = []
    exact = shown_exactly(total)
    for term in terms:
        exact = exact and shown_exactly(term.weight) and shown_exactly(term.value)
        weight = format_number(term.weight)
        value = format_number(term.value)
        weight = f"({weight})" if term.weight < 0 else weight
        value = f"({value})" if term.value < 0 else value
        parts.append(f"{weight}·{value}")
    return " + ".join(parts) + (" = " if exact else " ≈ ") + format_number(total)


@dataclass(frozen=True)
class ParameterCounts:
    """Weights (and biases) three kinds of layer need for the same input and output shapes."""

    fully_connected: int
    locally_connected: int
    convolution: int


def parameter_counts(
    in_shape: tuple[int, int, int],
    out_shape: tuple[int, int, int],
    kernel_hw: tuple[int, int],
    groups: int = 1,
) -> ParameterCounts:
    """Parameters (biases included) to map ``in_shape`` ``(C, H, W)`` to ``out_shape``.

    Fully connected: every output sees every input. Locally connected: every output sees only
    its window, with its own weights. Convolution: the window's weights are shared by all
    positions, so only one kernel per filter (and one bias) remains.
    """
    c, h, w = in_shape
    o, ho, wo = out_shape
    outputs = o * ho * wo
    window = (c // groups) * kernel_hw[0] * kernel_hw[1]
    return ParameterCounts(
        fully_connected=(c * h * w) * outputs + outputs,
        locally_connected=window * outputs + outputs,
        convolution=o * window + o,
    )


def to_channels(pixels: np.ndarray, gray: bool) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3)`` uint8 pixels as float64 ``(C, H, W)`` with values 0–255.

    ``gray`` converts colour with Pillow's integer ITU-R 601 luma, so the numbers match
    ``Image.convert("L")`` exactly; a gray image asked for in colour repeats its channel.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 2:
        channels = pixels[None].astype(np.float64)
        return channels if gray else np.repeat(channels, 3, axis=0)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"Expected an (H, W) or (H, W, 3) image, not shape {pixels.shape}.")
    if not gray:
        return pixels.transpose(2, 0, 1).astype(np.float64)
    rgb = pixels.astype(np.int64)
    luma = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
    return luma[None].astype(np.float64)


LAYOUTS = {
    "gray": "Grayscale: one kernel, one feature map",
    "depthwise": "RGB channel by channel: the kernel on each channel, three maps",
    "multichannel": "RGB, one 3-channel filter: three kernels summed, one map",
    "bank": "A bank of N filters on grayscale: N feature maps",
}
"""How kernels are arranged into filters, with the words the page shows."""


@dataclass(frozen=True)
class FilterBank:
    """Weights ``(O, C / groups, kh, kw)`` ready for :func:`conv2d`, and what the input must be."""

    weight: np.ndarray
    groups: int
    gray: bool
    labels: tuple[str, ...]


def arrange_filters(
    layout: str,
    kernels: list[np.ndarray],
    names: list[str] | None = None,
    channel_weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> FilterBank:
    """Turn 2-D kernels into conv2d weights for a ``layout`` of :data:`LAYOUTS`.

    ``gray`` and ``depthwise`` use ``kernels[0]``; ``multichannel`` scales it by
    ``channel_weights`` (one kernel per colour channel, results summed); ``bank`` stacks every
    kernel, centring smaller ones in zeros so that one conv2d call computes them all.
    """
    if not kernels:
        raise ValueError("Choose at least one kernel.")
    names = names or [f"Filter {i + 1}" for i in range(len(kernels))]
    first = np.asarray(kernels[0], dtype=np.float64)
    if layout == "gray":
        return FilterBank(first[None, None], 1, True, (names[0],))
    if layout == "depthwise":
        return FilterBank(np.stack([first[None]] * 3), 3, False, ("Red", "Green", "Blue"))
    if layout == "multichannel":
        if not all(np.isfinite(channel_weights)):
            raise ValueError("Every channel weight must be a finite number.")
        weight = np.stack([w * first for w in channel_weights])[None]
        return FilterBank(weight, 1, False, (names[0],))
    if layout == "bank":
        rows = max(np.shape(k)[0] for k in kernels)
        cols = max(np.shape(k)[1] for k in kernels)
        weight = np.stack([embed(k, rows, cols)[None] for k in kernels])
        return FilterBank(weight, 1, True, tuple(names))
    raise ValueError(f"Unknown filter layout {layout!r}: use one of {', '.join(LAYOUTS)}.")

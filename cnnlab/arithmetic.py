"""Output-size arithmetic of convolution, transposed convolution and pooling — exact to PyTorch.

Three per-dimension functions are the core; everything else is built on them::

    conv_output_size(28, 5, stride=2, padding=1)            # -> 13
    conv_transpose_output_size(13, 5, stride=2, padding=1)  # -> 27
    pool_output_size(5, 2, ceil_mode=True)                  # -> 3

Each returns an ``int`` or raises :class:`ValueError` with a sentence that says what is wrong and
how to fix it, under exactly the conditions where PyTorch refuses the configuration (the tests
check this against ``torch.nn.functional`` for thousands of random configurations).

On top of them: N-D layers (:func:`analyse`, :func:`output_shape`), the formulas as LaTeX with
the numbers substituted, which input rows/columns no window reaches (:func:`coverage`), transposed
convolution rewritten as a stride-1 convolution over a zero-inserted, padded input
(:func:`transposed_as_conv`), a layer-chain calculator (:func:`chain_shapes`) and a seeded quiz
(:func:`make_question`).

Asymmetric padding. PyTorch's ``conv*d`` layers pad both sides of a dimension equally; the only
way to pad unequally is ``F.pad(x, (left, right, ...))`` followed by a convolution with
``padding=0`` — which is also what ``padding="same"`` does internally when the kernel is even.
So a padding of ``(left, right)`` for one dimension is modelled, and checked, as exactly that.
Pooling pads implicitly with −∞ (max) or with zeros that can be left out of the average, so an
``F.pad`` in front would change its values: for pooling, only symmetric padding is accepted.
"""

from __future__ import annotations

import operator
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

OPERATIONS: tuple[str, ...] = ("conv", "conv_transpose", "max_pool", "avg_pool")
OPERATION_NAMES: dict[str, str] = {
    "conv": "Convolution",
    "conv_transpose": "Transposed convolution",
    "max_pool": "Max pooling",
    "avg_pool": "Average pooling",
}

Padding = int | str | tuple[int, int]


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------


def _whole(name: str, value: object) -> int:
    """Return ``value`` as an int, refusing floats and bools with a learner-readable message."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a whole number, not {value!r}.")
    try:
        return operator.index(value)  # accepts int and numpy integers, refuses 2.5
    except TypeError:
        raise ValueError(f"{name} must be a whole number, got {value!r}.") from None


def _at_least(name: str, value: object, low: int, why: str) -> int:
    value = _whole(name, value)
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}: {why}")
    return value


MAX_CHAIN_WIDTH = 65_536
"""Most channels or features a chain layer may have: far beyond any real network's layer."""


def _at_most(name: str, value: int, high: int) -> None:
    if value > high:
        raise ValueError(f"{name} must be at most {high:,}, got {value:,}.")


def _size(value: object) -> int:
    return _at_least(
        "Input size",
        value,
        1,
        "PyTorch needs at least one pixel along every spatial dimension (an empty input is "
        "refused, even with padding).",
    )


def _kernel(value: object) -> int:
    return _at_least("Kernel size", value, 1, "a window has to cover at least one pixel.")


def _stride(value: object) -> int:
    return _at_least(
        "Stride", value, 1, "the window has to move forward by at least one pixel per step."
    )


def _dilation(value: object) -> int:
    return _at_least(
        "Dilation", value, 1, "1 means the kernel taps touch each other; 2 leaves one-pixel gaps."
    )


def _padding_amount(value: object) -> int:
    value = _whole("Padding", value)
    if value < 0:
        raise ValueError(
            f"Padding can't be negative (got {value}): PyTorch refuses it. To crop the input, "
            "slice it before the layer."
        )
    return value


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel in pixels, D·(K−1)+1: a 3-tap kernel with dilation 2 spans 5."""
    return _dilation(dilation) * (_kernel(kernel) - 1) + 1


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """(left, right) padding PyTorch uses for ``padding="same"``: the odd pixel goes right."""
    total = _dilation(dilation) * (_kernel(kernel) - 1)
    return total // 2, total - total // 2


def _conv_padding(padding: Padding, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """Resolve a convolution's padding (int, "valid", "same" or (left, right)) to two ints."""
    if isinstance(padding, str):
        mode = padding.strip().lower()
        if mode == "valid":
            return 0, 0
        if mode == "same":
            if stride != 1:
                raise ValueError(
                    f"'same' padding needs stride 1 in PyTorch (got stride {stride}): with a "
                    "bigger stride the output can't be the same size. Set the stride to 1, or "
                    "give the padding as a number."
                )
            return same_padding(kernel, dilation)
        raise ValueError(
            f"Unknown padding {padding!r}: use a number, 'valid' (no padding) or 'same'."
        )
    if isinstance(padding, Sequence):
        if len(padding) != 2:
            raise ValueError(f"Asymmetric padding is a pair (left, right), got {tuple(padding)!r}.")
        return _padding_amount(padding[0]), _padding_amount(padding[1])
    amount = _padding_amount(padding)
    return amount, amount


# ---------------------------------------------------------------------------------------------
# The three per-dimension functions
# ---------------------------------------------------------------------------------------------


def _conv_size(size: int, kernel: int, stride: int, left: int, right: int, dilation: int) -> int:
    padded = size + left + right
    span = dilation * (kernel - 1) + 1
    if padded < span:
        dil = f" (dilation {dilation} spreads its {kernel} taps over {span} pixels)"
        raise ValueError(
            f"The kernel{dil if dilation > 1 else f' {kernel}'} is larger than the padded input "
            f"({size} + {left} + {right} = {padded} pixels), so it does not fit even once. Use a "
            "smaller kernel or dilation, more padding, or a bigger input."
        )
    return (padded - span) // stride + 1


def conv_output_size(
    size: int, kernel: int, stride: int = 1, padding: Padding = 0, dilation: int = 1
) -> int:
    """Output length of ``conv*d`` along one dimension: ⌊(W + 2P − D·(K−1) − 1)/S⌋ + 1.

    ``padding`` is a number, ``"valid"`` (0), ``"same"`` (stride 1 only; an even kernel puts the
    extra pixel on the right, as PyTorch does) or a ``(left, right)`` pair (``F.pad`` + conv).
    """
    size, kernel, stride, dilation = (
        _size(size),
        _kernel(kernel),
        _stride(stride),
        _dilation(dilation),
    )
    left, right = _conv_padding(padding, kernel, stride, dilation)
    return _conv_size(size, kernel, stride, left, right, dilation)


def conv_transpose_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    """Output length of ``conv_transpose*d``: (W − 1)·S − 2P + D·(K − 1) + output_padding + 1."""
    size, kernel, stride, dilation = (
        _size(size),
        _kernel(kernel),
        _stride(stride),
        _dilation(dilation),
    )
    if isinstance(padding, str):
        raise ValueError(
            f"Transposed convolution takes a number for padding, not {padding!r}: PyTorch has no "
            "'same' or 'valid' mode for it."
        )
    padding = _padding_amount(padding)
    output_padding = _whole("Output padding", output_padding)
    if output_padding < 0:
        raise ValueError(f"Output padding can't be negative (got {output_padding}).")
    if output_padding >= stride and output_padding >= dilation:
        raise ValueError(
            f"Output padding {output_padding} must be smaller than the stride ({stride}) or the "
            f"dilation ({dilation}): it only picks one of the output sizes a stride-{stride} "
            f"convolution could have come from. Use an output padding below "
            f"{max(stride, dilation)}."
        )
    out = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if out < 1:
        raise ValueError(
            f"Padding {padding} crops away the whole output: ({size} − 1)·{stride} − 2·{padding} "
            f"+ {dilation}·({kernel} − 1) + {output_padding} + 1 = {out}. In a transposed "
            "convolution padding removes pixels from the output; make it smaller."
        )
    return out


def _pool_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> tuple[int, bool]:
    """PyTorch's ``pooling_output_shape``, and whether ceil mode's extra window was dropped."""
    numerator = size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1  # // rounds toward −∞, like PyTorch's div_rtn
    dropped = False
    # PyTorch: in ceil mode the last window must start inside the input or the left padding.
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
        dropped = True
    return out, dropped


def pool_output_size(
    size: int,
    kernel: int,
    stride: int | None = None,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of ``max_pool*d`` / ``avg_pool*d`` along one dimension (stride defaults to K).

    ⌊(W + 2P − D·(K − 1) − 1)/S⌋ + 1, or ⌈…⌉ + 1 with ``ceil_mode`` — minus one when that last
    window would start in the right padding. Padding may be at most half the kernel (K // 2).
    """
    size, kernel, dilation = _size(size), _kernel(kernel), _dilation(dilation)
    stride = kernel if stride is None else _stride(stride)
    if isinstance(padding, str | Sequence):
        raise ValueError(
            f"Pooling takes one number for padding, not {padding!r}: PyTorch pads both sides "
            "equally and has no 'same' mode for pooling."
        )
    padding = _padding_amount(padding)
    if padding > kernel // 2:
        raise ValueError(
            f"Padding {padding} is more than half the kernel {kernel}: PyTorch pooling allows at "
            f"most {kernel // 2} (kernel // 2), otherwise a window could hold nothing but "
            "padding. Make the padding smaller or the kernel larger."
        )
    out, _ = _pool_size(size, kernel, stride, padding, dilation, bool(ceil_mode))
    if out < 1:
        span = dilation * (kernel - 1) + 1
        raise ValueError(
            f"The pooling window ({span} pixels{' with dilation' if dilation > 1 else ''}) is "
            f"larger than the padded input ({size} + 2·{padding} = {size + 2 * padding}), so the "
            "output would be empty. Use a smaller kernel or a bigger input."
        )
    return out


# ---------------------------------------------------------------------------------------------
# One dimension, fully explained (numbers, LaTeX) — and N-D layers built from it
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DimArithmetic:
    """Every number behind one spatial dimension of one layer, resolved and checked."""

    op: str
    size: int
    kernel: int
    stride: int
    pad_left: int
    pad_right: int
    dilation: int
    output_padding: int
    ceil_mode: bool
    output: int
    padding_label: str  # "2", "same", "valid" or "(1, 2)": what the learner asked for
    ceil_dropped_last: bool = False  # ceil mode: the last window would start in the padding

    @property
    def effective_kernel(self) -> int:
        """D·(K − 1) + 1: the span of the (dilated) kernel."""
        return self.dilation * (self.kernel - 1) + 1

    @property
    def padded_size(self) -> int:
        """Input length after padding (for transposed conv: the equivalent conv's input)."""
        if self.op == "conv_transpose":
            return transposed_as_conv(
                self.size,
                self.kernel,
                self.stride,
                self.pad_left,
                self.output_padding,
                self.dilation,
            ).conv_input_size
        return self.size + self.pad_left + self.pad_right

    @property
    def remainder(self) -> int:
        """(W + P_l + P_r − D·(K − 1) − 1) mod S: pixels left over after the last window."""
        if self.op == "conv_transpose":
            return 0
        return (self.size + self.pad_left + self.pad_right - self.effective_kernel) % self.stride

    @property
    def symmetric(self) -> bool:
        """True when both sides are padded equally."""
        return self.pad_left == self.pad_right

    def latex(self) -> str:
        """The formula with this dimension's numbers substituted, ending in ``= output``."""
        return formula_latex(self)

    def text(self) -> str:
        """The same formula in plain Unicode, for a notebook or a terminal."""
        return formula_text(self)


def formula_latex(dim: DimArithmetic) -> str:
    """LaTeX of the output-size formula with the numbers substituted, e.g. ``… = 13``."""
    k = f"{dim.dilation}\\cdot({dim.kernel}-1)"
    if dim.op == "conv_transpose":
        return (
            f"({dim.size}-1)\\cdot{dim.stride} - 2\\cdot{dim.pad_left} + {k} + "
            f"{dim.output_padding} + 1 = {dim.output}"
        )
    pad = f"2\\cdot{dim.pad_left}" if dim.symmetric else f"{dim.pad_left} + {dim.pad_right}"
    numerator = f"{dim.size} + {pad} - {k} - 1"
    if dim.ceil_mode:
        body = f"\\left\\lceil \\frac{{{numerator}}}{{{dim.stride}}} \\right\\rceil + 1"
        if dim.ceil_dropped_last:
            body += " - 1"
    else:
        body = f"\\left\\lfloor \\frac{{{numerator}}}{{{dim.stride}}} \\right\\rfloor + 1"
    return f"{body} = {dim.output}"


def formula_text(dim: DimArithmetic) -> str:
    """``formula_latex`` in plain Unicode, e.g. ``⌊(28 + 2·1 − 1·(5 − 1) − 1) / 2⌋ + 1 = 13``."""
    k = f"{dim.dilation}·({dim.kernel} − 1)"
    if dim.op == "conv_transpose":
        return (
            f"({dim.size} − 1)·{dim.stride} − 2·{dim.pad_left} + {k} + "
            f"{dim.output_padding} + 1 = {dim.output}"
        )
    pad = f"2·{dim.pad_left}" if dim.symmetric else f"{dim.pad_left} + {dim.pad_right}"
    left, right = ("⌈", "⌉") if dim.ceil_mode else ("⌊", "⌋")
    body = f"{left}({dim.size} + {pad} − {k} − 1) / {dim.stride}{right} + 1"
    if dim.ceil_mode and dim.ceil_dropped_last:
        body += " − 1"
    return f"{body} = {dim.output}"


def symbolic_latex(op: str, ceil_mode: bool = False, symmetric: bool = True) -> str:
    """The output-size formula in symbols (W, K, S, P, D), for the page's headline."""
    if op == "conv_transpose":
        return r"W_{out} = (W-1)\cdot S - 2P + D\cdot(K-1) + P_{out} + 1"
    pad = "2P" if symmetric else "P_{left} + P_{right}"
    bracket = (
        ("\\left\\lceil", "\\right\\rceil") if ceil_mode else ("\\left\\lfloor", "\\right\\rfloor")
    )
    return f"W_{{out}} = {bracket[0]} \\frac{{W + {pad} - D\\cdot(K-1) - 1}}{{S}} {bracket[1]} + 1"


def analyse_dim(
    op: str,
    size: int,
    kernel: int,
    stride: int | None = None,
    padding: Padding = 0,
    dilation: int = 1,
    output_padding: int = 0,
    ceil_mode: bool = False,
) -> DimArithmetic:
    """Resolve and check one dimension of ``op`` and return all its numbers (see DimArithmetic)."""
    if op not in OPERATIONS:
        raise ValueError(f"Unknown operation {op!r}: choose one of {', '.join(OPERATIONS)}.")
    label = padding if isinstance(padding, str) else str(padding)
    if not isinstance(padding, str) and isinstance(padding, Sequence):
        label = f"({padding[0]}, {padding[1]})" if len(padding) == 2 else str(padding)
    if op in ("conv", "conv_transpose"):
        stride = 1 if stride is None else stride
    if op != "conv_transpose" and _whole("Output padding", output_padding) != 0:
        raise ValueError("Output padding only exists for transposed convolution; set it to 0.")
    if op not in ("max_pool", "avg_pool") and ceil_mode:
        raise ValueError("ceil_mode only exists for pooling; switch it off for convolutions.")
    if op == "avg_pool" and _whole("Dilation", dilation) != 1:
        raise ValueError(
            "Average pooling has no dilation in PyTorch (avg_pool*d takes none); set it to 1, "
            "or use max pooling."
        )
    if op == "conv":
        out = conv_output_size(size, kernel, stride, padding, dilation)
        left, right = _conv_padding(padding, kernel, _stride(stride), _dilation(dilation))
        return DimArithmetic(op, size, kernel, stride, left, right, dilation, 0, False, out, label)
    if op == "conv_transpose":
        out = conv_transpose_output_size(size, kernel, stride, padding, output_padding, dilation)
        return DimArithmetic(
            op, size, kernel, stride, padding, padding, dilation, output_padding, False, out, label
        )
    out = pool_output_size(size, kernel, stride, padding, dilation, ceil_mode)
    stride = kernel if stride is None else stride
    _, dropped = _pool_size(size, kernel, stride, padding, dilation, bool(ceil_mode))
    return DimArithmetic(
        op,
        size,
        kernel,
        stride,
        padding,
        padding,
        dilation,
        0,
        bool(ceil_mode),
        out,
        label,
        dropped,
    )


def _per_dim(name: str, value: object, ndim: int) -> tuple:
    """Broadcast an int (or a str / pair for padding) to ``ndim`` values, or check the length."""
    if value is None or isinstance(value, str | int):
        return (value,) * ndim
    values = tuple(value)  # type: ignore[arg-type]
    if len(values) != ndim:
        raise ValueError(
            f"{name} has {len(values)} values but the input has {ndim} spatial dimension"
            f"{'s' if ndim > 1 else ''}: give one number, or one per dimension."
        )
    return values


def _is_int_pair(value: object) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, int) for v in value)
    )


@dataclass(frozen=True)
class LayerArithmetic:
    """A whole N-D layer: one :class:`DimArithmetic` per spatial dimension."""

    op: str
    dims: tuple[DimArithmetic, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Spatial input sizes, e.g. (28, 28)."""
        return tuple(d.size for d in self.dims)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Spatial output sizes, e.g. (13, 13)."""
        return tuple(d.output for d in self.dims)


def analyse(
    op: str,
    input_size: Sequence[int],
    kernel: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: Padding | Sequence[Padding] = 0,
    dilation: int | Sequence[int] = 1,
    output_padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
) -> LayerArithmetic:
    """Check a 1-D, 2-D or 3-D layer like PyTorch does and explain every spatial dimension.

    Every hyper-parameter is a number (all dimensions) or one value per dimension; ``padding``
    per dimension may also be a ``(left, right)`` pair (convolution only), and for convolution
    the whole padding may be ``"valid"`` or ``"same"``.
    """
    sizes = tuple(input_size)
    ndim = len(sizes)
    if not 1 <= ndim <= 3:
        raise ValueError(f"PyTorch has 1-D, 2-D and 3-D layers; this input has {ndim} dimensions.")
    if ndim == 1 and _is_int_pair(padding):
        pads: tuple = (tuple(padding),)  # type: ignore[arg-type]  # 1-D: a pair is (left, right)
    else:
        pads = _per_dim("Padding", padding, ndim)
    if op in ("max_pool", "avg_pool", "conv_transpose") and any(isinstance(p, tuple) for p in pads):
        raise ValueError(
            "Asymmetric (left, right) padding is only modelled for convolution (F.pad, then the "
            "convolution). PyTorch pools and transposed convolutions pad both sides equally."
        )
    kernels = _per_dim("Kernel size", kernel, ndim)
    strides = _per_dim("Stride", stride, ndim)
    dilations = _per_dim("Dilation", dilation, ndim)
    out_pads = _per_dim("Output padding", output_padding, ndim)
    dims = []
    for axis in range(ndim):
        try:
            dims.append(
                analyse_dim(
                    op,
                    sizes[axis],
                    kernels[axis],
                    strides[axis],
                    pads[axis],
                    dilations[axis],
                    out_pads[axis],
                    ceil_mode,
                )
            )
        except ValueError as error:
            prefix = f"{_AXIS_NAMES[ndim][axis]}: " if ndim > 1 else ""
            raise ValueError(prefix + str(error)) from None
    if op == "avg_pool" and ndim == 3:
        small = [d for d in dims if d.size < d.kernel]
        if small:
            raise ValueError(
                "PyTorch's avg_pool3d refuses an input smaller than the kernel in any dimension, "
                f"even when padding would make room (input {sizes}, kernel {tuple(kernels)}). "
                "Use a smaller kernel or a bigger input."
            )
    return LayerArithmetic(op, tuple(dims))


_AXIS_NAMES = {1: ("Length",), 2: ("Height", "Width"), 3: ("Depth", "Height", "Width")}


def axis_names(ndim: int) -> tuple[str, ...]:
    """Names of the spatial dimensions: ("Height", "Width") for 2-D."""
    return _AXIS_NAMES[ndim]


def output_shape(
    op: str,
    input_size: Sequence[int],
    kernel: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: Padding | Sequence[Padding] = 0,
    dilation: int | Sequence[int] = 1,
    output_padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
) -> tuple[int, ...]:
    """Spatial output shape of a 1-D/2-D/3-D layer: ``output_shape("conv", (28, 28), 5, 2, 1)``."""
    return analyse(
        op, input_size, kernel, stride, padding, dilation, output_padding, ceil_mode
    ).output_shape


# ---------------------------------------------------------------------------------------------
# Ground truth: run PyTorch on a zero tensor of that shape
# ---------------------------------------------------------------------------------------------


def run_torch(layer: LayerArithmetic) -> tuple[int, ...]:
    """Run the real PyTorch op on ``zeros(1, 1, *input)`` and return the spatial output shape.

    Asymmetric padding runs as ``F.pad`` then the op with ``padding=0``, exactly as modelled.
    Raises ``ValueError`` carrying PyTorch's own message if PyTorch refuses the configuration.
    """
    ndim = len(layer.dims)
    x = torch.zeros((1, 1, *layer.input_shape))
    kernel = tuple(d.kernel for d in layer.dims)
    stride = tuple(d.stride for d in layer.dims)
    dilation = tuple(d.dilation for d in layer.dims)
    padding = tuple(d.pad_left for d in layer.dims)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # 'same' with an even kernel warns that it copies the input; that's what we show.
            warnings.simplefilter("ignore", UserWarning)
            if layer.op == "conv":
                weight = torch.zeros((1, 1, *kernel))
                conv = (F.conv1d, F.conv2d, F.conv3d)[ndim - 1]
                labels = {d.padding_label for d in layer.dims}
                if labels <= {"same"} or labels <= {"valid"}:
                    y = conv(x, weight, stride=stride, padding=labels.pop(), dilation=dilation)
                else:
                    pads: list[int] = []
                    for d in reversed(layer.dims):  # F.pad lists the last dimension first
                        pads += [d.pad_left, d.pad_right]
                    y = conv(F.pad(x, pads), weight, stride=stride, padding=0, dilation=dilation)
            elif layer.op == "conv_transpose":
                weight = torch.zeros((1, 1, *kernel))
                conv_t = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[ndim - 1]
                out_pad = tuple(d.output_padding for d in layer.dims)
                y = conv_t(x, weight, None, stride, padding, out_pad, 1, dilation)
            elif layer.op == "max_pool":
                pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[ndim - 1]
                y = pool(x, kernel, stride, padding, dilation, ceil_mode=layer.dims[0].ceil_mode)
            else:
                pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[ndim - 1]
                y = pool(x, kernel, stride, padding, ceil_mode=layer.dims[0].ceil_mode)
    except RuntimeError as error:
        raise ValueError(f"PyTorch refused it: {str(error).splitlines()[0]}") from None
    return tuple(y.shape[2:])


# ---------------------------------------------------------------------------------------------
# Which pixels do the windows touch? (the conv_arithmetic picture)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """Where each window sits along one dimension, in input coordinates (0 = first real pixel).

    Padding has negative coordinates on the left and coordinates ≥ ``size`` on the right.
    For transposed convolution the coordinates are those of the equivalent stride-1
    convolution's input (the zero-inserted, padded one), shifted so 0 is its first cell.
    """

    size: int
    pad_left: int
    pad_right: int
    windows: tuple[tuple[int, ...], ...]  # the taps of each output position
    unreached: tuple[int, ...]  # real input pixels that no window ever reads
    trailing: tuple[int, ...]  # … of which lie after the last window (the remainder)
    skipped: tuple[int, ...]  # … of which fall in gaps (stride or dilation larger than the step)

    @property
    def starts(self) -> tuple[int, ...]:
        """First tap of every window."""
        return tuple(w[0] for w in self.windows)


def coverage(dim: DimArithmetic) -> Coverage:
    """Window taps of every output position along ``dim`` and the input pixels never reached.

    When (W + 2P − D·(K − 1) − 1) is not divisible by S, the last (remainder) pixels are
    ``trailing``: no window starts late enough to reach them. With dilation or a stride larger
    than the kernel, pixels between taps can be ``skipped`` too. In ceil-mode pooling the last
    window may hang over the end; PyTorch simply ignores the taps outside the padded input.
    """
    if dim.op == "conv_transpose":
        eq = transposed_as_conv(
            dim.size, dim.kernel, dim.stride, dim.pad_left, dim.output_padding, dim.dilation
        )
        size = eq.conv_input_size
        windows = tuple(
            tuple(start + dim.dilation * t for t in range(dim.kernel))
            for start in range(dim.output)
        )
        return Coverage(size, 0, 0, windows, (), (), ())
    low, high = -dim.pad_left, dim.size + dim.pad_right  # padded input is [low, high)
    windows = tuple(
        tuple(
            tap
            for tap in (low + o * dim.stride + dim.dilation * t for t in range(dim.kernel))
            if tap < high
        )
        for o in range(dim.output)
    )
    reached = {tap for window in windows for tap in window}
    unreached = tuple(i for i in range(dim.size) if i not in reached)
    last = max(reached)
    trailing = tuple(i for i in unreached if i > last)
    skipped = tuple(i for i in unreached if i < last)
    return Coverage(dim.size, dim.pad_left, dim.pad_right, windows, unreached, trailing, skipped)


# ---------------------------------------------------------------------------------------------
# Transposed convolution = stride-1 convolution over a zero-inserted, padded input
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransposedAsConv:
    """Transposed convolution along one dimension, rewritten as a stride-1 convolution.

    Put ``stride − 1`` zeros between input pixels (``inserted_size`` = (W − 1)·S + 1 cells), pad
    ``D·(K − 1) − P`` zeros on the left and ``D·(K − 1) − P + output_padding`` on the right (a
    negative pad crops), then slide the flipped kernel with stride 1 and the same dilation.
    """

    size: int
    kernel: int
    stride: int
    padding: int
    output_padding: int
    dilation: int

    @property
    def inserted_size(self) -> int:
        """Length after inserting S − 1 zeros between neighbouring pixels."""
        return (self.size - 1) * self.stride + 1

    @property
    def pad_left(self) -> int:
        """Zeros added on the left (negative: cells cropped)."""
        return self.dilation * (self.kernel - 1) - self.padding

    @property
    def pad_right(self) -> int:
        """Zeros added on the right, including the output padding (negative: cells cropped)."""
        return self.pad_left + self.output_padding

    @property
    def conv_input_size(self) -> int:
        """Length of the equivalent stride-1 convolution's input."""
        return self.inserted_size + self.pad_left + self.pad_right

    @property
    def output(self) -> int:
        """Output length of the equivalent convolution (= the transposed convolution's)."""
        return self.conv_input_size - self.dilation * (self.kernel - 1)

    def source_positions(self) -> tuple[int | None, ...]:
        """Where each original pixel lands in the equivalent input (None: cropped away)."""
        positions = (self.pad_left + j * self.stride for j in range(self.size))
        return tuple(p if 0 <= p < self.conv_input_size else None for p in positions)


def transposed_as_conv(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> TransposedAsConv:
    """Describe ``conv_transpose`` along one dimension as a zero-insert + pad + stride-1 conv."""
    conv_transpose_output_size(size, kernel, stride, padding, output_padding, dilation)
    return TransposedAsConv(size, kernel, stride, padding, output_padding, dilation)


def zero_insert_and_pad(
    x: torch.Tensor,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    dilation: Sequence[int],
) -> torch.Tensor:
    """Build the equivalent convolution's input from ``x`` (N, C, *spatial): zeros between
    pixels, then padding (negative pads crop, as ``F.pad`` does)."""
    ndim = x.dim() - 2
    sizes = [(n - 1) * s + 1 for n, s in zip(x.shape[2:], stride, strict=True)]
    out = x.new_zeros((*x.shape[:2], *sizes))
    out[(slice(None), slice(None), *(slice(None, None, s) for s in stride))] = x
    pads: list[int] = []
    for axis in reversed(range(ndim)):  # F.pad lists the last dimension first
        left = dilation[axis] * (kernel[axis] - 1) - padding[axis]
        pads += [left, left + output_padding[axis]]
    return F.pad(out, pads)


def conv_transpose_via_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    dilation: Sequence[int],
) -> torch.Tensor:
    """``F.conv_transpose*d(x, weight, …)`` computed as a stride-1 conv of the zero-inserted,
    padded input with the flipped kernel (``weight`` is (C_in, C_out, *k), as PyTorch stores it)."""
    ndim = x.dim() - 2
    kernel = tuple(weight.shape[2:])
    inp = zero_insert_and_pad(x, kernel, stride, padding, output_padding, dilation)
    flipped = weight.flip(dims=tuple(range(2, 2 + ndim))).transpose(0, 1)
    conv = (F.conv1d, F.conv2d, F.conv3d)[ndim - 1]
    return conv(inp, flipped, stride=1, padding=0, dilation=tuple(dilation))


# ---------------------------------------------------------------------------------------------
# Layer chains: 32×32×3 → conv → pool → … → flatten → linear
# ---------------------------------------------------------------------------------------------

CHAIN_KINDS: tuple[str, ...] = (
    "conv",
    "conv_transpose",
    "max_pool",
    "avg_pool",
    "relu",
    "flatten",
    "linear",
)


@dataclass(frozen=True)
class ChainLayer:
    """One row of a layer chain. ``out`` is the channel count (conv) or feature count (linear)."""

    kind: str
    out: int | None = None
    kernel: int = 1
    stride: int | None = None
    padding: int | str = 0
    dilation: int = 1


@dataclass(frozen=True)
class ChainStep:
    """A layer of the chain with the shape it outputs (no batch dimension) and its weights."""

    layer: ChainLayer
    shape: tuple[int, ...]
    params: int
    macs: int = 0  # multiply-accumulates for one input (what FLOP counters report as 2×)
    note: str = ""

    @property
    def label(self) -> str:
        """Shape as text, channels first: ``16×32×32`` or ``2048``."""
        return "×".join(str(n) for n in self.shape)


TEXTBOOK_INPUT: tuple[int, int, int] = (3, 32, 32)
TEXTBOOK_CHAIN: tuple[ChainLayer, ...] = (
    ChainLayer("conv", out=16, kernel=3, padding="same"),
    ChainLayer("relu"),
    ChainLayer("max_pool", kernel=2),
    ChainLayer("conv", out=32, kernel=3, padding="same"),
    ChainLayer("relu"),
    ChainLayer("max_pool", kernel=2),
    ChainLayer("flatten"),
    ChainLayer("linear", out=128),
    ChainLayer("relu"),
    ChainLayer("linear", out=10),
)


def _product(values: Sequence[int]) -> int:
    total = 1
    for n in values:
        total *= n
    return total


def _chain_step(shape: tuple[int, ...], layer: ChainLayer) -> ChainStep:
    kind = layer.kind
    if kind not in CHAIN_KINDS:
        raise ValueError(f"Unknown layer {kind!r}: choose one of {', '.join(CHAIN_KINDS)}.")
    if kind == "relu":
        return ChainStep(layer, shape, 0)
    if kind == "flatten":
        total = _product(shape)
        return ChainStep(layer, (total,), 0, note=" × ".join(map(str, shape)) + f" = {total}")
    if kind == "linear":
        features = _at_least("Linear output features", layer.out, 1, "a layer needs an output.")
        _at_most("Linear output features", features, MAX_CHAIN_WIDTH)
        note = "" if len(shape) == 1 else "applied to the last dimension only: flatten first?"
        params = shape[-1] * features + features
        macs = _product(shape) * features
        return ChainStep(layer, (*shape[:-1], features), params, macs, note)
    if len(shape) < 2:
        raise ValueError(
            f"{OPERATION_NAMES[kind]} needs channels and at least one spatial dimension, but the "
            f"input here is {shape}: it comes after a flatten or linear layer."
        )
    channels, spatial = shape[0], shape[1:]
    layer_maths = analyse(kind, spatial, layer.kernel, layer.stride, layer.padding, layer.dilation)
    out_spatial = layer_maths.output_shape
    if kind in ("conv", "conv_transpose"):
        out = _at_least("Output channels", layer.out, 1, "a convolution needs at least one filter.")
        _at_most("Output channels", out, MAX_CHAIN_WIDTH)
        kernel_volume = layer.kernel ** len(spatial)
        # Every output pixel of a conv (every input pixel of a transposed conv) costs one
        # kernel-volume dot product per (in, out) channel pair.
        positions = _product(out_spatial if kind == "conv" else spatial)
        macs = positions * channels * out * kernel_volume
        return ChainStep(layer, (out, *out_spatial), channels * out * kernel_volume + out, macs)
    return ChainStep(layer, (channels, *out_spatial), 0)


def chain_shapes(input_shape: Sequence[int], layers: Sequence[ChainLayer]) -> list[ChainStep]:
    """Shape after every layer for an input (channels, *spatial); raises ValueError naming the
    first layer that PyTorch would refuse."""
    shape = tuple(_at_least("Input dimension", n, 1, "shapes can't be empty.") for n in input_shape)
    if len(shape) < 2:
        raise ValueError(
            "The input needs channels and at least one spatial size, e.g. (3, 32, 32)."
        )
    steps: list[ChainStep] = []
    for number, layer in enumerate(layers, start=1):
        try:
            step = _chain_step(shape, layer)
        except ValueError as error:
            raise ValueError(f"Layer {number} ({layer.kind}): {error}") from None
        steps.append(step)
        shape = step.shape
    return steps


def layer_to_torch(shape: Sequence[int], layer: ChainLayer) -> nn.Module:
    """The real PyTorch module for ``layer`` applied to an input of ``shape`` (no batch)."""
    ndim = len(shape) - 1
    kind, k, s, p, d = layer.kind, layer.kernel, layer.stride, layer.padding, layer.dilation
    if kind == "conv":
        cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[ndim - 1]
        return cls(shape[0], layer.out, k, s or 1, p, d)
    if kind == "conv_transpose":
        cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[ndim - 1]
        return cls(shape[0], layer.out, k, s or 1, p, dilation=d)
    if kind == "max_pool":
        return (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[ndim - 1](k, s, p, d)
    if kind == "avg_pool":
        return (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[ndim - 1](k, s, p)
    if kind == "relu":
        return nn.ReLU()
    if kind == "flatten":
        return nn.Flatten()
    return nn.Linear(shape[-1], layer.out)


def chain_to_torch(input_shape: Sequence[int], layers: Sequence[ChainLayer]) -> nn.Sequential:
    """The same chain as a real ``nn.Sequential`` (used to check :func:`chain_shapes`)."""
    modules = []
    shape = tuple(input_shape)
    for step in chain_shapes(input_shape, layers):
        modules.append(layer_to_torch(shape, step.layer))
        shape = step.shape
    return nn.Sequential(*modules)


def run_chain_torch(input_shape: Sequence[int], layers: Sequence[ChainLayer]) -> list[tuple]:
    """Run the chain's ``nn.Sequential`` on ``zeros(1, *input_shape)``; shape after each layer."""
    # On the meta device PyTorch infers every shape with no memory and no arithmetic: a chain
    # the editor allows (4096 filters on a 64×512×512 input) would otherwise allocate gigabytes.
    with torch.device("meta"):
        model = chain_to_torch(input_shape, layers)
        x = torch.zeros((1, *input_shape))
    shapes = []
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 'same' + even kernel: a padded copy
        for module in model:
            x = module(x)
            shapes.append(tuple(x.shape[1:]))
    return shapes


# ---------------------------------------------------------------------------------------------
# Quiz: seeded, reproducible questions
# ---------------------------------------------------------------------------------------------

DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")


@dataclass(frozen=True)
class Question:
    """A quiz question: a square 2-D input and one layer; the answer is the output side length."""

    seed: int
    difficulty: str
    op: str
    size: int
    kernel: int
    stride: int
    padding: int
    dilation: int = 1
    output_padding: int = 0
    ceil_mode: bool = False
    answer: int = 0

    def dim(self) -> DimArithmetic:
        """The worked arithmetic (one dimension; the other is identical)."""
        return analyse_dim(
            self.op,
            self.size,
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
            self.output_padding,
            self.ceil_mode,
        )

    def prompt(self) -> str:
        """The question in words (Markdown)."""
        parts = [f"kernel **{self.kernel}×{self.kernel}**", f"stride **{self.stride}**"]
        parts.append(f"padding **{self.padding}**")
        if self.dilation != 1:
            parts.append(f"dilation **{self.dilation}**")
        if self.output_padding:
            parts.append(f"output_padding **{self.output_padding}**")
        if self.op in ("max_pool", "avg_pool"):
            parts.append(f"ceil_mode **{self.ceil_mode}**")
        return (
            f"A **{self.size}×{self.size}** input goes through **{OPERATION_NAMES[self.op].lower()}"
            f"** with {', '.join(parts)}. What is the output's height (= width)?"
        )


def check_answer(question: Question, answer: int) -> bool:
    """True when ``answer`` is the output size PyTorch gives."""
    return int(answer) == question.answer


def make_question(seed: int, difficulty: str = "easy") -> Question:
    """A valid random question; the same (seed, difficulty) always gives the same question.

    easy: convolution with kernel, stride and padding. medium: adds dilation and max/avg
    pooling. hard: adds ceil-mode pooling and transposed convolution with output padding.
    """
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"Unknown difficulty {difficulty!r}: choose one of {DIFFICULTIES}.")
    seed = _whole("Seed", seed)
    # A string seed is hashed with SHA-512 by ``random``, so it is stable across runs/platforms.
    rng = random.Random(f"cnnlab-quiz:{difficulty}:{seed}")
    ops = {"easy": ["conv"], "medium": ["conv", "conv", "max_pool", "avg_pool"]}.get(
        difficulty, ["conv", "max_pool", "avg_pool", "conv_transpose"]
    )
    while True:
        op = rng.choice(ops)
        size = rng.choice([5, 6, 7, 8, 9, 10, 12, 14, 15, 16, 20, 24, 28, 32, 64, 100, 224])
        kernel = rng.choice([1, 2, 3, 3, 3, 4, 5, 5, 7])
        stride = rng.choice([1, 1, 2, 2, 3])
        padding = rng.choice([0, 0, 1, 1, 2, 3])
        dilation = rng.choice([1, 1, 2, 3]) if difficulty != "easy" and op != "avg_pool" else 1
        ceil_mode = difficulty == "hard" and op.endswith("pool") and rng.random() < 0.7
        output_padding = rng.choice([0, 1]) if op == "conv_transpose" else 0
        if op == "conv_transpose":
            size = rng.choice([2, 3, 4, 5, 7, 8, 14, 16])
        if op.endswith("pool"):
            stride = rng.choice([kernel, kernel, 1, 2, 3])
        try:
            out = analyse_dim(
                op, size, kernel, stride, padding, dilation, output_padding, ceil_mode
            ).output
        except ValueError:
            continue  # an invalid draw: draw again from the same generator (still reproducible)
        return Question(
            seed,
            difficulty,
            op,
            size,
            kernel,
            stride,
            padding,
            dilation=dilation,
            output_padding=output_padding,
            ceil_mode=ceil_mode,
            answer=out,
        )

"""The kernel library: classic image-processing kernels, what each detects, and custom kernels.

Every kernel is a float64 matrix written the way PyTorch uses it: ``F.conv2d`` computes a
cross-correlation, so the sentences below describe what a kernel responds to *without* flipping
(flipping it, true convolution, mirrors the direction: Sobel x then responds to darkening).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_KERNEL_SIDE = 7
"""Largest custom kernel side: the step-by-step arithmetic stays readable up to 7×7."""
MAX_WEIGHT = 1e6
"""Largest absolute weight of a custom kernel: far past any useful one, and it keeps every
feature map of an image in [0, 1] finite and readable."""
_MAX_TEXT = 2000  # characters of a typed kernel: 49 cells of long decimals fit easily


@dataclass(frozen=True)
class Kernel:
    """A named kernel: its weights (rows × columns) and one sentence on what it detects."""

    name: str
    weights: np.ndarray
    detects: str

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the matrix."""
        return (int(self.weights.shape[0]), int(self.weights.shape[1]))


def box_blur(size: int = 3) -> np.ndarray:
    """A ``size``×``size`` matrix of ``1/size²``: every output is the plain mean of its window."""
    _check_blur_size(size)
    return np.full((size, size), 1.0 / (size * size))


def gaussian(size: int = 5, sigma: float = 1.0) -> np.ndarray:
    """Gaussian blur: ``exp(-(x² + y²) / (2σ²))`` sampled on the grid, normalised to sum to 1."""
    _check_blur_size(size)
    if not (
        isinstance(sigma, int | float | np.floating)
        and not isinstance(sigma, bool)
        and math.isfinite(sigma)
        and 0 < sigma <= 100
    ):
        raise ValueError(
            f"The Gaussian's sigma must be a number above 0 and at most 100, not {_show(sigma)}."
        )
    # Offsets from the centre cell: -2..2 for size 5; an even size centres between two cells.
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma * sigma))
    return g / g.sum()


def _check_blur_size(size: int) -> None:
    if not (
        isinstance(size, int | np.integer)
        and not isinstance(size, bool)
        and 1 <= size <= MAX_KERNEL_SIDE
    ):
        raise ValueError(f"A blur kernel's size must be 1 to {MAX_KERNEL_SIDE}, not {_show(size)}.")


def _m(rows: Sequence[Sequence[float]]) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


# name -> (matrix, sentence). Blurs are built by size, so they are listed in SIZED_PRESETS.
_FIXED: dict[str, tuple[np.ndarray, str]] = {
    "Identity": (
        _m([[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
        "Copies each pixel unchanged: the output is the input, a sanity check for the mechanics.",
    ),
    "Sharpen": (
        _m([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
        "Adds the difference between a pixel and its four neighbours, so edges and fine detail "
        "stand out more.",
    ),
    "Sobel x": (
        _m([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
        "Vertical edges: positive where the image gets brighter from left to right, negative "
        "where it gets darker (the middle row counts double, which smooths noise).",
    ),
    "Sobel y": (
        _m([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
        "Horizontal edges: positive where the image gets brighter from top to bottom, negative "
        "where it gets darker.",
    ),
    "Prewitt x": (
        _m([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]),
        "Vertical edges like Sobel x, but every row counts the same: slightly noisier.",
    ),
    "Prewitt y": (
        _m([[-1, -1, -1], [0, 0, 0], [1, 1, 1]]),
        "Horizontal edges like Sobel y, but every column counts the same: slightly noisier.",
    ),
    "Scharr x": (
        _m([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]),
        "Vertical edges like Sobel x, with weights tuned so that edges at every angle get a "
        "more even response.",
    ),
    "Scharr y": (
        _m([[-3, -10, -3], [0, 0, 0], [3, 10, 3]]),
        "Horizontal edges like Sobel y, with the rotation-balanced Scharr weights.",
    ),
    "Laplacian (4-neighbour)": (
        _m([[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
        "Edges in every direction: the sum of the four neighbours minus four times the pixel, "
        "zero on flat areas and smooth ramps, large where brightness curves.",
    ),
    "Laplacian (8-neighbour)": (
        _m([[1, 1, 1], [1, -8, 1], [1, 1, 1]]),
        "Edges in every direction, counting the diagonal neighbours too: a stronger, more "
        "rotation-even response than the 4-neighbour Laplacian.",
    ),
    "Emboss": (
        _m([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
        "Diagonal relief: edges whose bottom-right side is brighter come out light, the others "
        "dark, as if lit from one corner.",
    ),
    "Outline": (
        _m([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
        "Outlines: large wherever a pixel differs from the mean of its eight neighbours, zero "
        "on flat areas.",
    ),
    "Asymmetric L (flip demo)": (
        _m(
            [
                [1, 0, 0, 0, 0],
                [1, 0, 0, 0, 0],
                [1, 0, 0, 0, 0],
                [1, 0, 0, 0, 0],
                [1, 1, 1, 1, 0],
            ]
        ),
        "An 'L' with no symmetry: on the impulse pattern true convolution draws the L, while "
        "cross-correlation draws it rotated by 180°.",
    ),
}

SIZED_PRESETS = ("Box blur", "Gaussian blur")
"""Presets whose size (and, for the Gaussian, sigma) the learner chooses."""

PRESET_NAMES: tuple[str, ...] = (
    "Identity",
    "Box blur",
    "Gaussian blur",
    "Sharpen",
    "Sobel x",
    "Sobel y",
    "Prewitt x",
    "Prewitt y",
    "Scharr x",
    "Scharr y",
    "Laplacian (4-neighbour)",
    "Laplacian (8-neighbour)",
    "Emboss",
    "Outline",
    "Asymmetric L (flip demo)",
)
"""Every preset, in the order a learner meets them."""

ASYMMETRIC_EXAMPLE = "Asymmetric L (flip demo)"
"""The preset that shows cross-correlation and true convolution differ."""


def preset(name: str, size: int = 3, sigma: float = 1.0) -> Kernel:
    """The preset called ``name``; ``size`` applies to the blurs and ``sigma`` to the Gaussian."""
    if name == "Box blur":
        return Kernel(
            f"Box blur {size}×{size}",
            box_blur(size),
            "Smooths: every output is the plain average of the window, so noise and fine "
            "detail fade.",
        )
    if name == "Gaussian blur":
        return Kernel(
            f"Gaussian blur {size}×{size}, σ = {sigma:g}",
            gaussian(size, sigma),
            "Smooths like the box blur but weights near pixels more, which blurs without "
            "the blocky artefacts of a plain average.",
        )
    if name not in _FIXED:
        raise ValueError(f"There is no preset kernel called {name!r}.")
    weights, sentence = _FIXED[name]
    return Kernel(name, weights.copy(), sentence)


def validate_kernel(values: object) -> np.ndarray:
    """Check a custom kernel (1×1 to 7×7 of finite numbers) and return it as float64.

    Raises ``ValueError`` naming the first offending cell (1-based row and column), so a learner
    can find the empty or non-numeric entry.
    """
    try:
        array = np.array(values, dtype=object)
    except (ValueError, RecursionError):
        raise ValueError("A kernel must be a rectangle: every row needs the same length.") from None
    if array.ndim != 2:
        raise ValueError("A kernel must be a 2-D grid of numbers (rows × columns).")
    rows, cols = array.shape
    if not (1 <= rows <= MAX_KERNEL_SIDE and 1 <= cols <= MAX_KERNEL_SIDE):
        raise ValueError(
            f"A kernel must be 1×1 to {MAX_KERNEL_SIDE}×{MAX_KERNEL_SIDE}; this one is "
            f"{rows}×{cols}."
        )
    out = np.empty((rows, cols), dtype=np.float64)
    for r in range(rows):
        for c in range(cols):
            out[r, c] = _cell_value(array[r, c], f"Kernel cell (row {r + 1}, column {c + 1})")
    return out


def _cell_value(cell: object, where: str) -> float:
    """One kernel cell as a finite float within ±:data:`MAX_WEIGHT`, or a ``ValueError``."""
    if isinstance(cell, bool) or not isinstance(cell, int | float | str | np.number):
        raise ValueError(f"{where} is {_show(cell)}, not a number: type a number.")
    try:
        value = float(cell)
    except (TypeError, ValueError):
        raise ValueError(f"{where} is {_show(cell)}, not a number: type a number.") from None
    except OverflowError:  # an integer too large for a float
        value = math.inf
    if math.isnan(value):
        raise ValueError(f"{where} is empty or not a number (NaN): type a number.")
    if math.isinf(value):
        raise ValueError(f"{where} is infinite: use a finite number.")
    if abs(value) > MAX_WEIGHT:
        raise ValueError(
            f"{where} is {value:.3g}: kernel weights must be between {-MAX_WEIGHT:g} and "
            f"{MAX_WEIGHT:g}."
        )
    return value


def _show(value: object, limit: int = 30) -> str:
    """A value for a message: short, and never a huge or nested repr."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a number too large to use"
    if isinstance(value, bool | int | float | str | np.number) or value is None:
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 1] + "…"
    return f"a {type(value).__name__}"


def parse_kernel_text(text: str) -> np.ndarray:
    """Parse a kernel typed as text: rows separated by newlines or ``;``, cells by spaces or commas.

    Fractions such as ``1/9`` are accepted. The result is checked by :func:`validate_kernel`.
    """
    if not isinstance(text, str):
        raise ValueError("The kernel must be typed as text.")
    if len(text) > _MAX_TEXT:
        raise ValueError(
            f"The kernel text is over {_MAX_TEXT} characters: type at most 7×7 numbers."
        )
    rows = [row for row in text.replace(";", "\n").splitlines() if row.strip()]
    if not rows:
        raise ValueError("The kernel text is empty: type rows of numbers, e.g. '1 0 -1; 2 0 -2'.")
    grid = [[_parse_cell(cell) for cell in row.replace(",", " ").split()] for row in rows]
    widths = {len(row) for row in grid}
    if len(widths) != 1:
        raise ValueError(
            "Every kernel row needs the same number of cells; the rows have "
            + ", ".join(str(len(row)) for row in grid)
            + " cells."
        )
    return validate_kernel(grid)


def _parse_cell(cell: str) -> float:
    try:
        if "/" in cell:
            numerator, denominator = cell.split("/", 1)
            return float(numerator) / float(denominator)
        return float(cell)
    except (ValueError, ZeroDivisionError, OverflowError):
        raise ValueError(
            f"{_show(cell)} is not a number: use numbers like 2, -0.5 or 1/9."
        ) from None


def embed(weights: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Centre ``weights`` in a ``rows``×``cols`` zero matrix, cropping the border if it is larger.

    A kernel in a bank of larger kernels keeps its effect this way (a zero border adds nothing),
    and a custom kernel can start from any preset whatever size the learner picks.
    """
    weights = np.asarray(weights, dtype=np.float64)
    out = np.zeros((rows, cols), dtype=np.float64)
    kr, kc = weights.shape
    # Offsets of the overlap in each matrix; the centres line up (to the top-left for even sizes).
    r0, c0 = max((rows - kr) // 2, 0), max((cols - kc) // 2, 0)
    s0, t0 = max((kr - rows) // 2, 0), max((kc - cols) // 2, 0)
    h, w = min(rows, kr), min(cols, kc)
    out[r0 : r0 + h, c0 : c0 + w] = weights[s0 : s0 + h, t0 : t0 + w]
    return out

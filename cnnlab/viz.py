"""Turn arrays into pictures: colour maps, tiling and nearest-neighbour upscaling.

Feature maps go to the browser as images, not as chart payloads (a 512×512 heatmap in Plotly
is megabytes of JSON), so every page colours arrays here and shows them with ``st.image``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

# ColorBrewer RdBu (11 classes), reversed so negative is blue and positive is red; ColorBrewer
# marks it colour-blind safe, and its centre is white, so zero reads as "nothing".
DIVERGING_STOPS = np.array(
    [
        [5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240],
        [247, 247, 247],
        [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43], [103, 0, 31],
    ],
    dtype=np.float64,
)  # fmt: skip

# Viridis sampled at 9 points: perceptually uniform and colour-blind safe for magnitudes.
SEQUENTIAL_STOPS = np.array(
    [
        [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
        [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
    ],
    dtype=np.float64,
)  # fmt: skip


@dataclass(frozen=True)
class ColourScale:
    """How values were mapped to colours, so the page can print the legend."""

    vmin: float
    vmax: float
    diverging: bool


def _apply_stops(t: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Map ``t`` in [0, 1] through piecewise-linear colour stops to uint8 RGB."""
    t = np.nan_to_num(np.clip(t, 0.0, 1.0), nan=0.5)
    pos = t * (len(stops) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(stops) - 1)
    frac = (pos - lo)[..., None]
    rgb = stops[lo] * (1 - frac) + stops[hi] * frac
    return np.round(rgb).astype(np.uint8)


def diverging_rgb(values: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """Colour signed values blue (negative) – white (zero) – red (positive); zero is the centre."""
    values = np.asarray(values, dtype=np.float64)
    if vmax is None:
        finite = values[np.isfinite(values)]
        vmax = float(np.abs(finite).max()) if finite.size else 0.0
    vmax = vmax if vmax > 0 else 1.0
    return _apply_stops(0.5 + values / (2 * vmax), DIVERGING_STOPS)


def sequential_rgb(
    values: np.ndarray, vmin: float | None = None, vmax: float | None = None, gray: bool = False
) -> np.ndarray:
    """Colour magnitudes with viridis (or grayscale), ``vmin``→dark and ``vmax``→bright."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    vmin = float(finite.min()) if vmin is None and finite.size else (vmin or 0.0)
    vmax = float(finite.max()) if vmax is None and finite.size else (vmax or 1.0)
    span = vmax - vmin if vmax > vmin else 1.0
    t = (values - vmin) / span
    if gray:
        g = np.round(np.nan_to_num(np.clip(t, 0, 1)) * 255).astype(np.uint8)
        return np.stack([g, g, g], axis=-1)
    return _apply_stops(t, SEQUENTIAL_STOPS)


def colourise(values: np.ndarray, gray: bool = False) -> tuple[np.ndarray, ColourScale]:
    """Pick the scale a learner should see: diverging if any value is negative, else sequential."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 0.0
    if lo < 0:
        vmax = max(abs(lo), abs(hi))
        return diverging_rgb(values, vmax), ColourScale(-vmax, vmax, True)
    return sequential_rgb(values, lo, hi, gray=gray), ColourScale(lo, hi, False)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscale so single pixels stay crisp squares in the browser."""
    if factor <= 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


MAX_ASPECT = 4  # a picture longer than this many times its width is drawn thicker


def readable_aspect(image: np.ndarray, max_ratio: int = MAX_ASPECT) -> tuple[np.ndarray, int]:
    """``image`` (H, W[, C]) with its shorter side's pixels repeated until the longer side is
    at most ``max_ratio`` times it, and that repeat factor (1: unchanged). A 1×1024 map drawn
    as it is would be a hairline; repeating whole pixels keeps every value visible and exact."""
    h, w = image.shape[:2]
    factor = max(1, -(-max(h, w) // (max_ratio * min(h, w))))
    if factor == 1:
        return image, 1
    axis = 1 if w < h else 0
    return np.repeat(image, factor, axis=axis), factor


def framed(rgb: np.ndarray, width: int = 1, grey: int = 148) -> np.ndarray:
    """An ``(H, W, 3)`` picture inside a grey frame ``width`` pixels thick, so a white or pale
    picture (a global max of a bright image is one white cell) still shows where it is."""
    return np.pad(rgb, ((width, width), (width, width), (0, 0)), constant_values=grey)


def tile(images: np.ndarray, columns: int, gap: int = 1, fill: int = 255) -> np.ndarray:
    """Tile ``(N, H, W[, 3])`` images into one grid image, ``columns`` wide, with a ``gap``."""
    images = np.asarray(images)
    n, h, w = images.shape[:3]
    rows = -(-n // columns)
    extra = images.shape[3:]
    out = np.full(
        (rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap, *extra),
        fill,
        dtype=images.dtype,
    )
    for i in range(n):
        r, c = divmod(i, columns)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = images[i]
    return out


LUT_LEVELS = 1024


def scale_rgb(values: np.ndarray, scale: ColourScale, gray: bool = False) -> np.ndarray:
    """Colour ``values`` with an already chosen :class:`ColourScale`, through a lookup table.

    Same colours as :func:`diverging_rgb` / :func:`sequential_rgb` up to 1/1024 of the range,
    but one table lookup per pixel, which keeps big feature maps fast to draw. ``gray`` draws a
    sequential scale black-to-white instead of viridis.
    """
    values = np.asarray(values, dtype=np.float32)
    span = scale.vmax - scale.vmin
    t = (values - np.float32(scale.vmin)) / np.float32(span if span > 0 else 1.0)
    if not scale.diverging and span <= 0:
        t = np.zeros_like(t)
    index = np.rint(np.nan_to_num(np.clip(t, 0.0, 1.0), nan=0.5) * (LUT_LEVELS - 1))
    ramp = np.linspace(0.0, 1.0, LUT_LEVELS)
    if scale.diverging:
        table = _apply_stops(ramp, DIVERGING_STOPS)
    elif gray:
        table = np.repeat(np.round(ramp * 255).astype(np.uint8)[:, None], 3, axis=1)
    else:
        table = _apply_stops(ramp, SEQUENTIAL_STOPS)
    return table[index.astype(np.intp)]


def png_bytes(rgb: np.ndarray) -> bytes:
    """A ``(H, W, 3)`` or ``(H, W)`` uint8 picture as PNG bytes (lossless: cells stay sharp)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()

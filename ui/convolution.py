"""Widgets and renderers of the convolution lab (keys start with ``conv.``).

Widgets return plain values; cached computations are keyed on the image digest (inside one exact
key string, see :func:`cache_key`) and return ready-to-send image bytes, so a rerun after a
slider change recomputes only what that change affects and sends small JPEG/PNG images, never
chart payloads.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from cnnlab import conv, kernels
from cnnlab.conv import ConvSettings, FilterBank, format_number
from cnnlab.viz import MAX_ASPECT, ColourScale, readable_aspect, scale_rgb
from cnnlab.wording import plural
from ui.image_source import ImageSource, cache_key

CUSTOM = "Custom…"
VIEWS = ("Feature map", "Step by step", "The maths")
DISPLAY_SIDE = 480  # the widest a map is drawn in its column; larger maps are box-downscaled
SMALL_SIDE = 240  # smaller maps are nearest-upscaled to at least this, so pixels stay visible
STEP_SIDES = (5, 6, 7, 8, 9)
DEFAULT_BANK = ("Sobel x", "Sobel y", "Laplacian (4-neighbour)", "Emboss")


# ----------------------------------------------------------------------------- kernel choice
@dataclass(frozen=True)
class KernelChoice:
    """The kernel the learner chose: a name, its weights and what it detects."""

    name: str
    weights: np.ndarray
    detects: str


def kernel_picker() -> KernelChoice:
    """Preset or custom kernel; raises ``ValueError`` (shown by the page) for a bad custom one."""
    names = [*kernels.PRESET_NAMES, CUSTOM]
    name = st.selectbox("Kernel", names, index=names.index("Sobel x"), key="conv.kernel")
    if name == CUSTOM:
        return _custom_kernel()
    size, sigma = 3, 1.0
    if name in kernels.SIZED_PRESETS:
        size = st.select_slider("Kernel size", [3, 5, 7], value=3, key="conv.kernel_size")
    if name == "Gaussian blur":
        sigma = st.slider("Sigma σ", 0.3, 3.0, 1.0, 0.1, key="conv.sigma")
    kernel = kernels.preset(name, size=size, sigma=sigma)
    st.html(applied_matrix_html(kernel.weights) + _note(kernel.detects))
    return KernelChoice(kernel.name, kernel.weights, kernel.detects)


def applied_matrix_html(weights: np.ndarray) -> str:
    """The kernel as the lab applies it: rotated by 180° in true-convolution mode (set by
    :func:`operation_picker`, read here from its state since it is drawn below)."""
    if not st.session_state.get("conv.flip", False):
        return matrix_html(weights)
    return (
        "<div style='font-size:13px;margin-bottom:2px'>True convolution applies it rotated by "
        "180°:</div>" + matrix_html(np.rot90(np.asarray(weights), 2), highlight=True)
    )


def operation_picker() -> bool:
    """Cross-correlation or true convolution (the kernel flipped). Drawn with the kernel, outside
    the lab's fragment, so that the kernel matrix above it follows the choice."""
    return st.radio(
        "Operation", [False, True], key="conv.flip",
        format_func=lambda f: "True convolution (kernel flipped)" if f
        else "Cross-correlation (what PyTorch computes)",
    )  # fmt: skip


def _custom_kernel() -> KernelChoice:
    """A kernel edited cell by cell, starting from any preset, 1×1 to 7×7."""
    seed = st.selectbox("Start from", kernels.PRESET_NAMES, index=4, key="conv.custom.seed")
    rows_col, cols_col = st.columns(2)
    side = kernels.MAX_KERNEL_SIDE
    rows = rows_col.number_input("Rows", 1, side, 3, key="conv.custom.rows")
    cols = cols_col.number_input("Columns", 1, side, 3, key="conv.custom.cols")
    base = kernels.embed(kernels.preset(seed).weights, int(rows), int(cols))
    columns = [str(c + 1) for c in range(int(cols))]
    shown = np.vectorize(lambda v: f"{v:.6g}", otypes=[object])(base)
    st.caption("Edit any cell; the lab recomputes when you leave it.")
    # Text cells: a number column changes what is typed (1e308 became 1308; NaN and words were
    # dropped) before the page sees it; the engine reads the text and refuses it in words.
    # The editor's edits are tied to its shape and starting point, hence the key.
    edited = st.data_editor(
        pd.DataFrame(shown, columns=columns), key=custom_editor_key(seed, int(rows), int(cols)),
        hide_index=True, num_rows="fixed", width="content",
        column_config={c: st.column_config.TextColumn(c) for c in columns},
    )  # fmt: skip
    cells = edited.to_numpy(dtype=object)
    # Untouched cells keep the preset's exact weight, not its six-digit text.
    weights = kernels.validate_kernel(np.where(cells == shown, base, cells))
    if st.session_state.get("conv.flip", False):
        st.html(applied_matrix_html(weights))
    return KernelChoice(
        f"Custom {weights.shape[0]}×{weights.shape[1]}",
        weights,
        "Your own kernel: each output is the sum of the window's pixels times these weights.",
    )


def custom_editor_key(seed: str, rows: int, cols: int) -> str:
    """Session-state key of the custom-kernel editor for this starting preset and shape."""
    return f"conv.custom.cells.{seed}.{rows}x{cols}"


def matrix_html(weights: np.ndarray, highlight: bool = False) -> str:
    """A kernel as a small bordered matrix of numbers."""
    cells = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(format_number(float(v), 4))}</td>" for v in row)
        + "</tr>"
        for row in np.asarray(weights)
    )
    border = "#2563eb" if highlight else "#94a3b8"
    return (
        "<style>.kmat{border-collapse:collapse;font:13px ui-monospace,monospace}"
        f".kmat td{{border:1px solid {border};padding:2px 7px;text-align:right;min-width:2.2em}}"
        f"</style><table class='kmat'>{cells}</table>"
    )


# ------------------------------------------------------------------------------ options
@dataclass(frozen=True)
class Channels:
    """How the kernel meets the image's channels: the layout and its own settings."""

    layout: str
    channel_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    bank: tuple[str, ...] = ()


@dataclass(frozen=True)
class Options:
    """Everything besides the kernel that shapes the output."""

    channels: Channels
    settings: ConvSettings
    bias: float


def channels_picker() -> Channels:
    """Grayscale, per-channel RGB, one 3-channel filter or a bank of filters.

    It sits with the kernel, outside the lab's fragment: it changes what the kernel is, and every
    widget inside the fragment costs browser time on each stride or padding change.
    """
    layout = st.selectbox(
        "Channels and filters", list(conv.LAYOUTS), format_func=conv.LAYOUTS.get,
        key="conv.layout",
    )  # fmt: skip
    if layout == "multichannel":
        st.caption("The filter is one kernel per channel: weight × kernel on R, G and B.")
        r, g, b = st.columns(3)
        weights = (
            r.number_input("Red ×", -2.0, 2.0, 1.0, 0.5, key="conv.weight_r"),
            g.number_input("Green ×", -2.0, 2.0, 0.0, 0.5, key="conv.weight_g"),
            b.number_input("Blue ×", -2.0, 2.0, -1.0, 0.5, key="conv.weight_b"),
        )
        return Channels(layout, channel_weights=weights)
    if layout == "bank":
        st.caption("Each filter of the bank is a preset kernel; the kernel chosen above is unused.")
        bank = st.multiselect(
            "Filters in the bank", kernels.PRESET_NAMES, default=list(DEFAULT_BANK),
            max_selections=8, key="conv.bank",
        )  # fmt: skip
        return Channels(layout, bank=tuple(bank))
    return Channels(layout)


def options_panel(channels: Channels, flip: bool) -> Options:
    """Stride, dilation, padding, bias and ReLU widgets, in one row of columns; ``flip`` comes
    from :func:`operation_picker`."""
    moves, padding_col, output_col = st.columns(3, gap="medium")
    stride = moves.slider("Stride", 1, 8, 1, key="conv.stride")
    dilation = moves.slider("Dilation", 1, 5, 1, key="conv.dilation")
    padding_choice = padding_col.selectbox(
        "Padding", ["valid", "same", "number"], index=1, key="conv.padding",
        format_func={"valid": "Valid (none)", "same": "Same (keep size)",
                     "number": "A number of cells"}.get,
    )  # fmt: skip
    mode = padding_col.selectbox(
        "Padding mode", conv.PADDING_MODES, key="conv.padding_mode",
        disabled=padding_choice == "valid",
    )  # fmt: skip
    padding: int | str = padding_choice
    if padding_choice == "number":
        padding = int(padding_col.number_input("Padding cells", 0, 20, 1, key="conv.padding_cells"))
    bias = output_col.number_input("Bias", -255.0, 255.0, 0.0, 1.0, key="conv.bias")
    relu = output_col.toggle("ReLU after", key="conv.relu", help="max(0, x): negatives become 0.")
    settings = ConvSettings(stride, padding, mode, dilation, flip, relu)  # type: ignore[arg-type]
    return Options(channels, settings, float(bias))


def filters_for(choice: KernelChoice, options: Options) -> FilterBank:
    """The conv2d weights for the chosen kernel (or bank) and layout."""
    channels = options.channels
    if channels.layout == "bank":
        picked = [kernels.preset(name) for name in channels.bank]
        return conv.arrange_filters("bank", [k.weights for k in picked], [k.name for k in picked])
    return conv.arrange_filters(
        channels.layout, [choice.weights], [choice.name], channels.channel_weights
    )


# ------------------------------------------------------------------------- computation
@dataclass(frozen=True)
class MapView:
    """One feature map ready to show: encoded image, value range and colour scale."""

    label: str
    image: bytes
    lo: float
    hi: float
    scale: ColourScale
    stretch: int = 1  # a hairline map's thin side is drawn this many times thicker
    shape: tuple[int, int] = (1, 1)  # height and width of the picture as drawn


@dataclass(frozen=True)
class LayerView:
    """The whole output: shape, maps, and (depthwise) the channels recombined as colour."""

    shape: tuple[int, int, int]
    maps: tuple[MapView, ...]
    composite: bytes | None


def pixels(source: ImageSource, gray: bool) -> np.ndarray:
    """The image as ``(C, H, W)`` pixel values 0–255 (uint8, read-only), cached on the digest."""
    return _pixels(source.digest, source.image, gray)


# A resource, not data: st.cache_data would unpickle a fresh copy (megabytes) on every rerun,
# and nobody writes to these arrays (they are marked read-only). Keyed on the exact digest.
@st.cache_resource(max_entries=16, ttl=3600)
def _pixels(digest: str, _image: Image.Image, gray: bool) -> np.ndarray:
    array = conv.to_channels(np.asarray(_image), gray=gray).astype(np.uint8)
    array.flags.writeable = False
    return array


def layer_view(source: ImageSource, bank: FilterBank, bias: float, s: ConvSettings) -> LayerView:
    """Compute the feature maps (F.conv2d) and encode them for display; cached on the digest."""
    key = cache_key(source, bank.weight, bank.groups, bank.gray, bank.labels, bias, s)
    return _layer_view(key, source, bank, bias, s)


# Arguments starting with "_" are not hashed: ``key`` (from cache_key) already identifies them.
@st.cache_data(max_entries=64, ttl=3600)
def _layer_view(
    key: str, _source: ImageSource, _bank: FilterBank, _bias: float, _s: ConvSettings
) -> LayerView:
    weight, groups, gray, labels, bias, s = (
        _bank.weight, _bank.groups, _bank.gray, _bank.labels, _bias, _s
    )  # fmt: skip
    x = pixels(_source, gray)
    out = conv.conv2d(x, weight, np.full(weight.shape[0], bias), s, groups)
    # Maps of one layer share a colour scale when they are channels of one picture (depthwise),
    # so their colours compare; a bank's filters differ in scale, so each gets its own.
    shared = _scale(out) if groups > 1 else None
    maps = tuple(
        _map_view(label, out[i], shared or _scale(out[i])) for i, label in enumerate(labels)
    )
    composite = None
    if groups > 1:
        rgb = np.clip(np.rint(out.transpose(1, 2, 0)), 0, 255).astype(np.uint8)
        composite = encode(readable_aspect(display_size(rgb))[0])
    return LayerView((int(out.shape[0]), int(out.shape[1]), int(out.shape[2])), maps, composite)


def _scale(values: np.ndarray) -> ColourScale:
    lo, hi = float(values.min()), float(values.max())
    if lo < 0:
        vmax = max(-lo, hi)
        return ColourScale(-vmax, vmax, True)
    return ColourScale(lo, hi, False)


def _map_view(label: str, values: np.ndarray, scale: ColourScale) -> MapView:
    rgb, stretch = readable_aspect(scale_rgb(display_size(values), scale, gray=True))
    rgb = with_colour_bar(upscale_small(rgb), scale)
    lo, hi = float(values.min()), float(values.max())
    return MapView(label, encode(rgb), lo, hi, scale, stretch, (rgb.shape[0], rgb.shape[1]))


def with_colour_bar(rgb: np.ndarray, scale: ColourScale) -> np.ndarray:
    """The map with its colour bar (``scale.vmin`` at the left to ``scale.vmax``) drawn below.

    Drawn into the image rather than sent as a separate element: each element in the lab's
    fragment costs browser time on every rerun. The caption names the bar's end values.
    """
    h, w = rgb.shape[:2]
    bar_h, gap = max(8, h // 24), max(4, h // 48)
    ramp = np.linspace(scale.vmin, scale.vmax, w, dtype=np.float64)
    bar = scale_rgb(np.repeat(ramp[None, :], bar_h, axis=0), scale, gray=True)
    bar[0], bar[-1], bar[:, 0], bar[:, -1] = 148, 148, 148, 148  # a thin grey frame
    white = np.full((gap, w, 3), 255, dtype=np.uint8)
    return np.concatenate([np.asarray(rgb, dtype=np.uint8), white, bar], axis=0)


def upscale_small(rgb: np.ndarray) -> np.ndarray:
    """Nearest-upscale a map smaller than :data:`SMALL_SIDE`, so its pixels stay visible."""
    h, w = rgb.shape[:2]
    if max(h, w) >= SMALL_SIDE:
        return rgb
    factor = -(-SMALL_SIDE // max(h, w))
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def display_size(values: np.ndarray) -> np.ndarray:
    """Box-downscale a big map to :data:`DISPLAY_SIDE` (float maps averaged, not subsampled)."""
    h, w = values.shape[:2]
    if max(h, w) <= DISPLAY_SIDE:
        return values
    f = DISPLAY_SIDE / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    if values.ndim == 2:
        return np.asarray(Image.fromarray(values.astype(np.float32), "F").resize(size, Image.BOX))
    return np.asarray(Image.fromarray(values).resize(size, Image.BOX))


def encode(rgb: np.ndarray) -> bytes:
    """JPEG for photo-sized images (small, fast); PNG, nearest-upscaled, for small maps."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    buffer = io.BytesIO()
    if max(rgb.shape[:2]) >= SMALL_SIDE:
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
    else:
        Image.fromarray(upscale_small(rgb)).save(buffer, format="PNG")
    return buffer.getvalue()


def input_preview(source: ImageSource, gray: bool, patch: tuple[int, int, int]) -> bytes:
    """The input as shown (gray or colour), with the step-by-step crop outlined in blue."""
    return _input_preview(cache_key(source, gray, patch), source, gray, patch)


@st.cache_data(max_entries=32, ttl=3600)
def _input_preview(key: str, _source: ImageSource, _gray: bool, _patch: tuple) -> bytes:
    gray, patch = _gray, _patch
    x = pixels(_source, gray)
    rgb = np.repeat(x, 3, axis=0) if gray else x
    rgb = np.clip(rgb, 0, 255).astype(np.uint8).transpose(1, 2, 0).copy()
    top, left, side = patch
    h, w = rgb.shape[:2]
    # A frame two pixels outside the crop (clipped to the image), thick enough to see when shown.
    thick = max(1, max(h, w) // 256)
    r0, r1 = max(top - thick, 0), min(top + side + thick, h)
    c0, c1 = max(left - thick, 0), min(left + side + thick, w)
    blue = np.array([37, 99, 235], dtype=np.uint8)
    rgb[r0 : r0 + thick, c0:c1] = blue
    rgb[max(r1 - thick, 0) : r1, c0:c1] = blue
    rgb[r0:r1, c0 : c0 + thick] = blue
    rgb[r0:r1, max(c1 - thick, 0) : c1] = blue
    return encode(readable_aspect(display_size(rgb))[0])


# ---------------------------------------------------------------------------- rendering
def bar_text(view: MapView) -> str:
    """``colour bar below the map: −1020 (left) … 0 … 1020 (right)``."""
    s = view.scale
    middle = "0" if s.diverging else format_number((s.vmin + s.vmax) / 2, 4)
    return (
        f"colour bar below the map: {format_number(s.vmin, 4)} (left) … {middle} … "
        f"{format_number(s.vmax, 4)} (right)"
    )


def range_text(view: MapView) -> str:
    """``values −1020 … 1020 (diverging scale centred at 0)``."""
    kind = (
        "blue = negative, white = 0, red = positive"
        if view.scale.diverging
        else "black = lowest, white = highest"
    )
    return f"values {format_number(view.lo, 5)} … {format_number(view.hi, 5)} ({kind})"


def shape_text(shape: tuple[int, int, int]) -> str:
    """``Output 1 × 1022 × 1022 (maps × height × width)``."""
    maps = "map" if shape[0] == 1 else "maps"
    return f"Output {shape[0]} × {shape[1]} × {shape[2]} ({maps} × height × width)"


def grid_html(
    patch: np.ndarray,
    window: conv.Window,
    pad: conv.Padding,
    mode: str,
) -> str:
    """The padded crop as a numeric grid; the window's cells are highlighted with their weights.

    Padded border cells are grey and italic and show the value the padding mode puts there.
    """
    h, w = patch.shape
    in_window = {(t.row, t.col): t.weight for t in window.terms}
    rows = []
    for r in range(-pad.top, h + pad.bottom):
        cells = []
        for c in range(-pad.left, w + pad.right):
            sr, sc = conv.source_index(r, h, mode), conv.source_index(c, w, mode)  # type: ignore[arg-type]
            value = 0.0 if sr is None or sc is None else float(patch[sr, sc])
            padded = not (0 <= r < h and 0 <= c < w)
            classes = ["pad"] if padded else []
            weight = ""
            if (r, c) in in_window:
                classes.append("win")
                weight = f"<sub>×{html.escape(format_number(in_window[(r, c)], 3))}</sub>"
            cells.append(
                f"<td class='{' '.join(classes)}'>{html.escape(format_number(value, 4))}"
                f"{weight}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<style>.cgrid{border-collapse:collapse;font:12px ui-monospace,monospace}"
        ".cgrid td{border:1px solid #cbd5e1;padding:3px 4px;text-align:center;min-width:2.6em}"
        ".cgrid td.pad{background:#f1f5f9;color:#64748b;font-style:italic}"
        ".cgrid td.win{background:#dbeafe;outline:2px solid #2563eb;color:#0f172a}"
        ".cgrid sub{color:#1d4ed8;font-size:9px}</style>"
        f"<table class='cgrid'>{''.join(rows)}</table>"
    )


def output_grid_html(values: np.ndarray, current: tuple[int, int]) -> str:
    """The small feature map; positions up to the current one are filled in, in reading order."""
    rows = []
    for i in range(values.shape[0]):
        cells = []
        for j in range(values.shape[1]):
            done = (i, j) <= current
            text = format_number(float(values[i, j]), 4) if done else "·"
            style = " class='cur'" if (i, j) == current else ""
            cells.append(f"<td{style}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<style>.ogrid{border-collapse:collapse;font:12px ui-monospace,monospace}"
        ".ogrid td{border:1px solid #cbd5e1;padding:3px 4px;text-align:center;min-width:2.6em}"
        ".ogrid td.cur{background:#fde68a;outline:2px solid #d97706}</style>"
        f"<table class='ogrid'>{''.join(rows)}</table>"
    )


def show_output(view: LayerView) -> None:
    """For a single map or channel-by-channel RGB, the picture itself (its shape is above)."""
    if view.composite is not None:
        caption = "The three channel maps recombined as colour (clipped to 0–255)"
        alt = "The feature maps of the red, green and blue channels recombined as one colour image"
        st.image(view.composite, width=display_width(*view.shape[1:]), caption=caption, alt=alt)
    elif len(view.maps) == 1:
        _show_map(st, view.maps[0])
    else:
        st.caption("One feature map per filter, below.")


def show_map_grid(view: LayerView) -> None:
    """Several maps (a bank, or the R, G, B channel maps) side by side, full width."""
    if len(view.maps) == 1:
        return
    columns = st.columns(min(len(view.maps), 4))
    for i, map_view in enumerate(view.maps):
        _show_map(columns[i % len(columns)], map_view)


TALL_PX = 480  # a picture much taller than wide is drawn this tall, not column-wide


def display_width(height: int, width: int) -> int | str:
    """``st.image`` width for a picture of ``height``×``width``: the column's width, or for a
    tall strip a width that keeps it about :data:`TALL_PX` tall (a column-wide 1×4 picture
    would run four screens down)."""
    if height <= 2 * width:
        return "stretch"
    return round(TALL_PX / min(height / width, MAX_ASPECT))  # drawn at most MAX_ASPECT : 1


def _show_map(target: Any, view: MapView) -> None:
    """One map (its colour bar drawn below it) in ``target`` (the page or a column)."""
    drawn = f"; drawn {view.stretch}× thicker across to be seen" if view.stretch > 1 else ""
    target.image(
        view.image, width=display_width(*view.shape),
        caption=f"{view.label}: {range_text(view)}; {bar_text(view)}{drawn}",
        alt=f"Feature map of {view.label}, {range_text(view)}, with its colour bar below",
    )  # fmt: skip


def summary_text(name: str, bank: FilterBank, options: Options) -> str:
    """One line: which image, how many filters of what size, and the settings in force."""
    s = options.settings
    o, per, kh, kw = bank.weight.shape
    op = "true convolution" if s.flip else "cross-correlation"
    padding = f"padding {s.padding}" + ("" if s.padding == "valid" else f" ({s.padding_mode})")
    return (
        f"{name}: {plural(o, 'filter')} of {per}×{kh}×{kw} weights, stride {s.stride}, {padding}, "
        f"dilation {s.dilation}, bias {format_number(options.bias)}, {op}"
        + (", then ReLU" if s.relu else "")
        + "."
    )


def markdown_escape(text: str) -> str:
    """``text`` shown literally in ``st.markdown`` (an uploaded file's name may hold ``*_[]``)."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|:$~])", r"\\\1", text)


def patch_location(x: np.ndarray, digest: str) -> tuple[int, int, int]:
    """``(top, left, side)`` of the step-by-step crop, from its widgets (kept inside the image).

    A new image starts with the crop on its most varied patch (:func:`conv.busiest_patch`).
    """
    h, w = int(x.shape[1]), int(x.shape[2])
    side = min(int(st.session_state.get("conv.step.size", 7)), h, w)
    state = st.session_state
    if state.get("conv.step.image") != digest:
        state["conv.step.image"] = digest
        state["conv.step.top"], state["conv.step.left"] = busiest_patch(x, digest, side)
    top = int(state.get("conv.step.top", (h - side) // 2))
    left = int(state.get("conv.step.left", (w - side) // 2))
    top, left = min(max(top, 0), h - side), min(max(left, 0), w - side)
    state["conv.step.top"], state["conv.step.left"] = top, left
    return top, left, side


def busiest_patch(x: np.ndarray, digest: str, side: int) -> tuple[int, int]:
    """:func:`conv.busiest_patch` of ``x``, the pixels of the image ``digest`` (gray or colour,
    told apart by the shape), once per server: every student opening the page starts there."""
    return _busiest_patch(cache_key(digest, x.shape, side), x, side)


@st.cache_data(max_entries=64, ttl=3600, show_spinner=False)
def _busiest_patch(key: str, _x: np.ndarray, side: int) -> tuple[int, int]:
    return conv.busiest_patch(_x, side)


def step_by_step(x: np.ndarray, bank: FilterBank, options: Options, patch: tuple) -> None:
    """A crop as a tiny input: the window at each output position and its sum, with a player."""
    h, w = x.shape[1:]
    st.markdown(
        "The crop (framed in blue on the input in *Feature map*) is treated as a tiny image of "
        "its own, so the padding you chose surrounds it (grey cells). Move the window, or press "
        "play to slide it over every position; each product is weight × pixel, and their sum is "
        "the output."
    )
    size_col, top_col, left_col, pick_col = st.columns(4)
    size_col.select_slider(
        "Crop size", STEP_SIDES, key="conv.step.size", value=STEP_SIDES[2]
    )  # the value is read by patch_location before this widget renders
    top, left, side = patch
    wanted = int(st.session_state.get("conv.step.size", side))
    if side < wanted:
        st.info(
            f"The image is only {h}×{w} pixels, so the crop is {side}×{side} instead of "
            f"{wanted}×{wanted}: a square crop cannot be larger than the image's shorter side.",
            icon=":material/info:",
        )
    top_col.number_input("Crop top row", 0, max(h - side, 0), key="conv.step.top")
    left_col.number_input("Crop left column", 0, max(w - side, 0), key="conv.step.left")
    out_index = 0
    if bank.weight.shape[0] > 1:
        out_index = pick_col.selectbox(
            "Explain map", range(bank.weight.shape[0]), format_func=lambda i: bank.labels[i],
            key="conv.step.map",
        )  # fmt: skip
    crop = x[:, top : top + side, left : left + side].astype(np.float64)
    try:
        small = crop_output(crop, bank, options)[out_index]
    except ValueError as error:
        st.error(f"On this {side}×{side} crop: {error}", icon=":material/error:")
        return
    st.toggle("Play: slide the window over every position", key="conv.step.play")
    playing = bool(st.session_state.get("conv.step.play"))
    _step_player(crop, bank, out_index, options, small, playing)


def crop_output(crop: np.ndarray, bank: FilterBank, options: Options) -> np.ndarray:
    """F.conv2d of the step-by-step crop (cached: the player reruns it every second)."""
    key = cache_key(crop, bank.weight, bank.groups, options.bias, options.settings)
    return _crop_output(key, crop, bank, options.bias, options.settings)


@st.cache_data(max_entries=256, ttl=3600)
def _crop_output(
    key: str, _crop: np.ndarray, _bank: FilterBank, _bias: float, _s: ConvSettings
) -> np.ndarray:
    bias = np.full(_bank.weight.shape[0], _bias)
    return conv.conv2d(_crop, _bank.weight, bias, _s, _bank.groups)


def _step_player(
    crop: np.ndarray, bank: FilterBank, o: int, options: Options, small: np.ndarray, playing: bool
) -> None:
    def player() -> None:
        rows, cols = small.shape
        last = rows * cols - 1
        position = int(st.session_state.get("conv.step.position", 0))
        if playing:
            position += 1
        st.session_state["conv.step.position"] = position % (last + 1) if last else 0
        if last:
            st.slider("Window position (reading order)", 0, last, key="conv.step.position")
        i, j = divmod(int(st.session_state["conv.step.position"]), cols)
        _explain(crop, bank, o, options, small, (i, j))

    # A fragment: moving the window reruns only this part in the browser, not the whole page
    # with its 1024-pixel images; while playing it also reruns itself every second.
    st.fragment(player, run_every=1.0 if playing else None)()


def _explain(
    crop: np.ndarray,
    bank: FilterBank,
    o: int,
    options: Options,
    small: np.ndarray,
    at: tuple[int, int],
) -> None:
    s = options.settings
    per_group = bank.weight.shape[1]
    group = o // (bank.weight.shape[0] // bank.groups)
    channels = [group * per_group + k for k in range(per_group)]
    names = ["Red", "Green", "Blue"] if crop.shape[0] == 3 else ["Gray"]
    kernel_hw = bank.weight.shape[2:]
    pad = conv.pad_amounts(kernel_hw, s)
    windows = [conv.window_at(crop[c], bank.weight[o, k], s, *at) for k, c in enumerate(channels)]
    flip = " The weights shown are the kernel rotated by 180° (true convolution)." if s.flip else ""
    output = _heading(f"Feature map {small.shape[0]} × {small.shape[1]}") + output_grid_html(
        small, at
    )
    # One st.html for all the grids (a flex row), not columns of several elements: every
    # element in the lab's fragment costs browser time on each rerun after a settings change.
    blocks = []
    for c, window in zip(channels, windows, strict=True):
        if len(channels) == 1:
            what = "Input crop" if crop.shape[0] == 1 else f"{names[c]} channel of the crop"
        else:
            what = f"{names[c]} channel"
        heading = _heading(f"{what}, padded (window at output {at}).{flip}")
        blocks.append(f"<div>{heading}{grid_html(crop[c], window, pad, s.padding_mode)}</div>")
    blocks.append(f"<div>{output}</div>")
    st.html(
        "<div style='display:flex;flex-wrap:wrap;gap:16px 32px;align-items:flex-start'>"
        + "".join(blocks)
        + "</div>"
    )
    lines = []
    for c, window in zip(channels, windows, strict=True):
        label = f"{names[c]}: " if len(channels) > 1 else ""
        lines.append(label + conv.sum_of_products(window.terms, window.total))
    total = sum(wd.total for wd in windows)
    if len(windows) > 1:
        lines.append(
            "Channels summed: " + " + ".join(_paren(wd.total) for wd in windows)
            + f" = {format_number(total)}"
        )  # fmt: skip
    value = total + options.bias
    if options.bias:
        lines.append(f"Plus bias: {format_number(total)} + {_paren(options.bias)} = "
                     f"{format_number(value)}")  # fmt: skip
    if s.relu:
        lines.append(f"ReLU: max(0, {format_number(value)}) = {format_number(max(value, 0.0))}")
    lines.append(f"PyTorch's F.conv2d wrote {format_number(float(small[at]))} at output {at}.")
    st.code("\n".join(lines), language=None, wrap_lines=True)


def _heading(text: str) -> str:
    return f"<p style='margin:0 0 4px;font-weight:600'>{html.escape(text)}</p>"


def _note(text: str) -> str:
    return f"<p style='margin:6px 0 0;font-size:14px;color:#475569'>{html.escape(text)}</p>"


def _paren(value: float) -> str:
    text = format_number(value)
    return f"({text})" if value < 0 else text


def maths_text(
    in_shape: tuple[int, int, int],
    out_shape: tuple[int, int, int],
    kernel_hw: tuple[int, int],
    options: Options,
    pad: conv.Padding,
    counts: conv.ParameterCounts,
) -> str:
    """The formula, padding and stride with this image's numbers, and the parameter counts."""
    c, h, w = in_shape
    o, ho, wo = out_shape
    kh, kw = kernel_hw
    s = options.settings
    return f"""
**The formula.** PyTorch's `conv2d` computes a *cross-correlation*: for output position (i, j),

$$S(i, j) = \\sum_m \\sum_n I(i + m,\\ j + n)\\, K(m, n)$$

summing over the kernel's rows m and columns n (and over the input channels, for a filter with
several). With stride s and dilation d the window starts at (s·i, s·j) and its cells are d
apart: I(s·i + d·m, s·j + d·n). A *true convolution* uses I(i − m, j − n) instead, which is the
same as flipping the kernel by 180° first; networks learn their kernels, so libraries skip the flip.

**Padding** adds cells around the input so the window can also be centred on border pixels:
zeros, a mirror image (reflect), copies of the edge (replicate) or the opposite edge (circular).
**Stride** moves the window s pixels at a time, shrinking the output about s times per side. Here:

H_out = ⌊(H + padding − d·(k − 1) − 1) / s⌋ + 1 = ⌊({h} + {pad.top + pad.bottom} −
{s.dilation}·({kh} − 1) − 1) / {s.stride}⌋ + 1 = **{ho}**, and likewise
W_out = ⌊({w} + {pad.left + pad.right} − {s.dilation}·({kw} − 1) − 1) / {s.stride}⌋ + 1 = **{wo}**.

**Why convolution needs so few parameters.** To turn this {c} × {h} × {w} input into the
{o} × {ho} × {wo} output:

| Layer | Each output sees | Parameters |
|---|---|---:|
| Fully connected | every input value | {counts.fully_connected:,} |
| Locally connected (no sharing) | its {kh}×{kw} window, own weights |\
 {counts.locally_connected:,} |
| Convolution (shared kernel) | its {kh}×{kw} window, shared weights | {counts.convolution:,} |

*Local connectivity* (each output looks only at a small window) removes most weights; *weight
sharing* (the same kernel at every position) removes the rest, and it means a pattern is detected
wherever it appears in the image.
"""

"""Convolution variants page: sizes, the cost table, connectivity, image maps, 1-D and 3-D."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from cnnlab import conv_variants as cv
from cnnlab.viz import colourise, readable_aspect, tile, upscale
from ui import figure_text, picture, url_state
from ui.heap import FIGURES_PER_CACHE

IMAGE_SIDE = 160
PLAY_INTERVAL = 0.3  # seconds per step while the 1-D kernel slides on its own
PLAY_STEP = 3  # samples per step: a sweep of the 200-sample signal takes about 20 s
MATRIX_PIXELS = 256


def sizes(key: str) -> cv.Sizes:
    """The learner's layer sizes (not yet checked)."""
    cols = st.columns(7)
    c_in = cols[0].number_input("Input channels", 1, cv.MAX_CHANNELS, 256, key=f"{key}.c_in")
    c_out = cols[1].number_input("Output channels", 1, cv.MAX_CHANNELS, 256, key=f"{key}.c_out")
    kernel = cols[2].selectbox("Kernel", (1, 3, 5, 7, 9, 11), index=1, key=f"{key}.kernel")
    groups = cols[3].slider("Groups", 1, 32, 4, key=f"{key}.groups")
    dilation = cols[4].slider("Dilation", 1, 6, 2, key=f"{key}.dilation")
    height = cols[5].number_input("Height", 1, 512, 56, key=f"{key}.h")
    width = cols[6].number_input("Width", 1, 512, 56, key=f"{key}.w")
    return cv.Sizes(
        int(c_in), int(c_out), int(kernel), int(groups), int(dilation), int(height), int(width)
    )


@st.cache_data(max_entries=256, show_spinner=False)
def costs(s: cv.Sizes) -> list[cv.Cost]:
    """Every variant's cost at ``s`` (modules built on meta)."""
    return [cv.cost(v, s) for v in cv.VARIANTS]


def cost_table(rows: list[cv.Cost]) -> None:
    """The side-by-side cost table and the standard versus separable ratio."""
    standard = next(r for r in rows if r.variant == "standard")
    separable = next(r for r in rows if r.variant == "separable")
    frame = pd.DataFrame(
        [
            {
                "variant": cv.TITLES[r.variant],
                "output": "×".join(map(str, r.output_shape)),
                "parameters": r.params,
                "= weights + biases": r.formula,
                "multiply-adds": r.macs,
                "× standard's cost": round(r.macs / standard.macs, 4),
            }
            for r in rows
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    m = st.columns(3)
    m[0].metric("Standard: multiply-adds", f"{standard.macs:,}")
    m[1].metric("Depthwise-separable", f"{separable.macs:,}")
    m[2].metric("Standard ÷ separable", f"{standard.macs / separable.macs:.2f}×")
    st.caption(
        "Parameters are counted from the built PyTorch modules; multiply-adds (one per weight "
        "use, biases left out; 1 multiply-add = 2 FLOPs) are checked by the tests against "
        "PyTorch's FlopCounterMode. Separable = depthwise k×k (one filter per channel) then "
        "1×1 across channels, so its cost ratio is 1/c_out + 1/k² of a standard convolution."
    )


def _grid_image(grid: np.ndarray, pixels: int, on: tuple = (37, 99, 235)) -> np.ndarray:
    """A 0/1 grid as a crisp RGB picture about ``pixels`` wide, with cell borders when small."""
    rgb = np.full((*grid.shape, 3), 245, dtype=np.uint8)
    rgb[grid.astype(bool)] = on
    if max(grid.shape) > pixels:
        step = -(-max(grid.shape) // pixels)
        return rgb[::step, ::step]
    factor = max(1, pixels // max(grid.shape))
    big = upscale(rgb, factor)
    if factor >= 6:  # draw the cell borders so single connections can be counted
        big[::factor, :] = 200
        big[:, ::factor] = 200
    return big


def connectivity_view(variant: str, s: cv.Sizes) -> None:
    """Connectivity matrix (outputs × inputs) next to the spatial footprint."""
    matrix = cv.connectivity(variant, s)
    grid = cv.footprint(variant, s.kernel, s.dilation)
    left, right = st.columns(2)
    left.image(
        _grid_image(matrix, MATRIX_PIXELS),
        caption=f"Channels: {matrix.shape[0]} outputs (rows) × {matrix.shape[1]} inputs "
        f"(columns); blue = connected ({int(matrix.sum()):,} of {matrix.size:,} pairs).",
        alt="Connectivity matrix of output versus input channels",
    )
    what = (
        "output pixels one input pixel writes"
        if variant == "transposed"
        else ("input pixels one output pixel reads")
    )
    right.image(
        _grid_image(grid, min(160, 24 * max(grid.shape))),
        caption=f"Spatial footprint: the {grid.shape[0]}×{grid.shape[1]} {what} "
        f"({int(grid.sum())} taps).",
        alt="Spatial footprint of one filter",
    )
    notes = {
        "standard": "Every output channel sees every input channel through a k×k window.",
        "pointwise": "A 1×1 convolution mixes channels pixel by pixel: no neighbours at all.",
        "depthwise": "One k×k filter per channel: no mixing between channels.",
        "separable": "Depthwise (the diagonal) then 1×1 (everything): together every output sees "
        "every input, through far fewer weights.",
        "grouped": f"{s.groups} groups: each output sees only its own group's "
        f"{s.c_in // max(s.groups, 1)} input channels (block diagonal). AlexNet used 2, "
        "ResNeXt 32.",
        "dilated": f"Dilation {s.dilation} spreads the {s.kernel}×{s.kernel} taps over "
        f"{grid.shape[0]}×{grid.shape[0]} pixels: a wider view at the same cost.",
        "transposed": "Each input pixel is spread (weighted) over a k×k patch of the output, "
        "with stride 2: the output is twice as large (upsampling in decoders and GANs).",
    }
    st.caption(
        notes[variant] + " Both pictures are checked by the tests against gradients of "
        "the built PyTorch module."
    )


def _maps_picture(maps: np.ndarray) -> tuple[np.ndarray, str]:
    # Each map on its own scale: a blur's 0–1 would otherwise wash out an edge map's ±0.2.
    coloured = [colourise(m) for m in maps]
    # A strip's maps are drawn thicker (whole pixels repeated), or they would be hairlines.
    shown = [readable_aspect(rgb)[0] for rgb, _ in coloured]
    picture = tile(np.stack(shown), min(len(maps), 3), gap=4)
    ranges = "; ".join(f"{s.vmin:.2g} to {s.vmax:.2g}" for _, s in coloured)
    return picture, (
        f"each map on its own scale: blue–white–red where it has negative values, viridis "
        f"otherwise; ranges {ranges}"
    )


@st.cache_data(max_entries=64, show_spinner=False)
def _applied(
    digest: str, _image: Image.Image, variant: str, dilation: int
) -> tuple[np.ndarray, cv.Applied]:
    """The thumbnail and the variant's maps, per image (``digest`` stands for ``_image``)."""
    small = _image.convert("RGB")
    small.thumbnail((IMAGE_SIDE, IMAGE_SIDE))
    rgb = np.asarray(small)
    return rgb, cv.apply_to_image(variant, rgb, dilation)


def _width(picture: np.ndarray, side: int, usual: int | str) -> int | str:
    """``usual``, or for a picture over twice as tall as wide a width that keeps it ``side``
    pixels tall (drawn at the usual width, a strip would run screens down)."""
    h, w = picture.shape[:2]
    return usual if h <= 2 * w else max(80, round(side * w / h))  # room for a caption


@st.cache_resource(max_entries=64, ttl=3600, show_spinner=False)
def _image_pictures(
    digest: str, _image: Image.Image, variant: str, dilation: int
) -> tuple[bytes, int | str, str, bytes, int | str, str]:
    """The input and the maps encoded once per (image, variant, dilation), with their widths
    and captions: shared read-only, so a rerun encodes nothing."""
    rgb, applied = _applied(digest, _image, variant, dilation)
    maps_picture, scale = _maps_picture(applied.maps)
    shown, stretch = readable_aspect(rgb)
    thicker = f" Input and maps drawn {stretch}× thicker across." if stretch > 1 else ""
    maps_caption = (
        f"{len(applied.maps)} output maps, {applied.maps.shape[1]}×"
        f"{applied.maps.shape[2]}: " + ", ".join(applied.names) + f" ({scale}).{thicker}"
    )
    return (
        picture.array_bytes(shown),
        _width(shown, IMAGE_SIDE, IMAGE_SIDE),
        f"Input {rgb.shape[0]}×{rgb.shape[1]}×3",
        picture.array_bytes(maps_picture),
        _width(maps_picture, 3 * IMAGE_SIDE, "content"),
        maps_caption,
    )


def image_view(variant: str, image: Image.Image, digest: str, dilation: int) -> None:
    """The image and what the variant's hand-set layer makes of it, map by map."""
    shown, shown_width, caption, maps, maps_width, maps_caption = _image_pictures(
        digest, image, variant, dilation
    )
    left, right = st.columns([1, 3])
    picture.image(shown, left, caption=caption, width=shown_width, alt="The input image")
    picture.image(
        maps,
        right,
        width=maps_width,
        alt=f"Output maps of the {cv.TITLES[variant]} convolution",
        caption=maps_caption,
    )


@st.cache_resource(max_entries=64, ttl=3600, show_spinner=False)
def _signal(name: str, kind: str, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The signal, the kernel and the convolution's output (read-only, shared)."""
    x = cv.signal(name, 200)
    k = cv.kernel_1d(kind, size)
    return x, k, cv.conv1d(x, k)


# Built once per kernel position and shared: a full rerun redraws nothing unchanged (a sweep
# while playing still builds one figure per tick, as before).
@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def _signal_figure(name: str, kind: str, size: int, position: int) -> go.Figure:
    """The signal, the samples under the kernel and the output so far."""
    x, k, y = _signal(name, kind, size)
    window = x[position : position + len(k)]
    fig = go.Figure()
    fig.add_scatter(y=x, name="signal x", line={"color": "#94a3b8"})
    fig.add_scatter(
        x=np.arange(position, position + len(k)),
        y=window,
        name="under the kernel",
        mode="markers",
        marker={"color": "#2563eb", "size": 6},
    )
    centre = np.arange(len(y)) + len(k) // 2
    fig.add_scatter(
        x=centre[: position + 1],
        y=y[: position + 1],
        name="output y (so far)",
        line={"color": "#dc2626", "width": 3},
    )
    fig.add_vrect(
        x0=position - 0.5,
        x1=position + len(k) - 0.5,
        fillcolor="#2563eb",
        opacity=0.08,
        line_width=0,
    )
    fig.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h"},
        xaxis_title="sample",
    )
    return fig


def signal_view(key: str) -> None:
    """1-D convolution: a real signal, the kernel at a chosen position, the output so far; a
    play toggle slides the kernel on its own (only the fragment reruns)."""
    playing = st.toggle("Play (slide the kernel along the signal)", key=f"{key}.play")
    url_state.fragment(run_every=PLAY_INTERVAL if playing else None)(_signal_body)(key, playing)


def _signal_body(key: str, playing: bool) -> None:
    cols = st.columns(4)
    name = cols[0].selectbox("Signal", cv.SIGNALS, key=f"{key}.signal")
    kind = cols[1].selectbox("Kernel", cv.KERNELS_1D, key=f"{key}.kernel")
    size = cols[2].slider("Kernel size", 3, 31, 9, step=2, key=f"{key}.size")
    x, k, y = _signal(name, kind, size)
    state, pos_key = st.session_state, f"{key}.pos"
    # Kept within the output (a larger kernel shortens it); playing moves it PLAY_STEP a tick.
    position = min(int(state.get(pos_key, len(y) // 3)), len(y) - 1)
    state[pos_key] = (position + PLAY_STEP) % len(y) if playing else position
    position = cols[3].slider("Kernel position", 0, len(y) - 1, key=pos_key)
    window = x[position : position + len(k)]
    products = window * k
    fig = _signal_figure(name, kind, size, position)
    figure_text.plotly_chart(fig, width="stretch", key=f"{key}.chart")
    terms = " + ".join(f"{w:.3g}·{v:.3g}" for w, v in zip(k[:4], window[:4], strict=True))
    st.markdown(
        f"y[{position}] = Σ w·x = {terms}{' + …' if len(k) > 4 else ''} = **{products.sum():.4f}** "
        f"(PyTorch's conv1d: {y[position]:.4f}). Output length {len(x)} − {len(k)} + 1 = {len(y)}."
    )


def volume_view(key: str) -> None:
    """3-D convolution: a moving square through a 3-D kernel, output slices with values."""
    cols = st.columns(2)
    kind = cols[0].selectbox("3-D kernel", cv.KERNELS_3D, key=f"{key}.kernel")
    speed = cols[1].slider("Speed (pixels per frame)", 0, 3, 2, key=f"{key}.speed")
    shown = _volume(kind, speed)
    picture.image(shown.frames, alt="Input frames of a square moving right", caption=shown.caption)
    picture.image(
        shown.slices, alt="Output slices of the 3-D convolution", caption=shown.slices_caption
    )
    st.markdown(f"Values along the middle row (y = {shown.row}) of every output slice:")
    st.dataframe(shown.values, width="stretch")


@dataclass(frozen=True)
class VolumeView:
    """The 3-D convolution as shown: frames and slices (encoded), captions, the middle row."""

    frames: bytes
    caption: str
    slices: bytes
    slices_caption: str
    row: int
    values: pd.DataFrame


@st.cache_resource(max_entries=32, ttl=3600, show_spinner=False)
def _volume(kind: str, speed: int) -> VolumeView:
    """The moving square through the kernel, drawn once per (kernel, speed), shared read-only."""
    volume = cv.moving_square(frames=6, side=20, size=6, speed=speed)
    kernel = cv.kernel_3d(kind)
    out = cv.conv3d(volume, kernel)
    rgb, scale = colourise(out)
    row = out.shape[1] // 2
    return VolumeView(
        picture.array_bytes(upscale(tile(colourise(volume)[0], len(volume), gap=2), 4)),
        f"Input: {volume.shape[0]} frames of {volume.shape[1]}×{volume.shape[2]} "
        "(a square moving right).",
        picture.array_bytes(upscale(tile(rgb, len(out), gap=2), 4)),
        f"Output: {out.shape[0]} slices of {out.shape[1]}×{out.shape[2]} from a "
        f"{'×'.join(map(str, kernel.shape))} kernel (time × height × width); blue negative, "
        f"white 0, red positive; range {scale.vmin:.3g} to {scale.vmax:.3g}.",
        row,
        pd.DataFrame(np.round(out[:, row, :], 3), index=[f"t={t}" for t in range(len(out))]),
    )

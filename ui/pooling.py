"""Widgets and renderers of the Pooling page; ``pages/pooling.py`` only wires them together."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
import torch.nn.functional as F
from PIL import Image
from plotly.subplots import make_subplots

from cnnlab import images
from cnnlab.images import to_array
from cnnlab.invariance import InvarianceResult, ShiftCurve, edge_conv, invariance_experiment
from cnnlab.pooling import (
    KIND_LABELS,
    KINDS,
    HeadComparison,
    PoolSpec,
    PoolTrace,
    WindowStep,
    check_spec,
    format_number,
    max_pool2d_with_indices,
    parameter_count,
    pool2d,
    pool_module,
    spec_for_kind,
)
from cnnlab.viz import framed, png_bytes, sequential_rgb, tile, upscale
from cnnlab.wording import plural
from ui import figure_text, picture
from ui.heap import FIGURES_PER_CACHE
from ui.image_source import ImageSource, cache_key, cache_on_image

PLAY_INTERVAL = 1.2  # seconds per window while playing: time to read the expression
CELL_PX = 46
INPUT_SCALE = [[0.0, "#f8fafc"], [1.0, "#7cb3f7"]]  # light, so dark digits stay readable
WINDOW = "#ea580c"  # orange outline of the current window
PICKED = "#dc2626"  # red: the maximum max pooling selects
P_CHOICES = (1, 2, 3, 4, 8)

KIND_HELP = {
    "max": "keeps the **largest** value of each window: the strongest response survives.",
    "avg": "takes the **mean** of each window: a blur followed by subsampling.",
    "lp": "takes the **Lp norm** (p = 2: √ of the sum of squares) of each window — between "
    "average (p = 1, up to a factor) and max (large p).",
    "global_avg": "averages the **whole map** into one number per channel (window = input).",
    "global_max": "keeps the **largest value of the whole map**, one number per channel.",
}


def pool_settings() -> PoolSpec:
    """Pooling type and window settings; returns the spec (validated later by the engine)."""
    kind = st.radio(
        "Pooling type", KINDS, format_func=KIND_LABELS.get, horizontal=True, key="pool.kind"
    )
    st.caption(f"**{KIND_LABELS[kind]} pooling** {KIND_HELP[kind]}")
    is_global = kind in ("global_avg", "global_max")
    cols = st.columns(4)
    window = cols[0].slider("Window", 1, 6, 2, key="pool.window", disabled=is_global)
    stride = cols[1].slider("Stride", 1, 6, 2, key="pool.stride", disabled=is_global)
    padding = cols[2].slider(
        "Padding",
        0,
        3,
        0,
        key="pool.padding",
        disabled=is_global,
        help="PyTorch allows at most window // 2.",
    )
    dilation = cols[3].slider(
        "Dilation (max only)",
        1,
        3,
        1,
        key="pool.dilation",
        disabled=kind != "max",
        help="Gaps between the cells a max-pooling window reads. PyTorch has no dilation for "
        "average or Lp pooling.",
    )
    cols = st.columns(3)
    ceil_mode = cols[0].checkbox(
        "ceil_mode",
        key="pool.ceil",
        disabled=is_global,
        help="Round the output size up: one more, partial window at the end when the windows "
        "do not tile the input exactly.",
    )
    count_pad = cols[1].checkbox(
        "Count padding in the average",
        True,
        key="pool.count_pad",
        disabled=kind != "avg",
        help="count_include_pad: divide by the whole window (padding zeros included) or only "
        "by the real inputs in it.",
    )
    p = 2
    if kind == "lp":
        # Shown only for Lp: a disabled select-slider's grey label fails WCAG contrast.
        p = cols[2].select_slider("p", P_CHOICES, 2, key="pool.p", help="p = 2 is L2.")
    base = PoolSpec("max", window, stride, padding, dilation, ceil_mode, count_pad, float(p))
    return spec_for_kind(base, kind)


def _bump_seed() -> None:
    st.session_state["pool.seed"] = (st.session_state.get("pool.seed", 0) + 1) % 10_000


def grid_input() -> np.ndarray:
    """A seeded grid of integers 0–9 the learner can regenerate or edit."""
    cols = st.columns([2, 2, 1], vertical_alignment="bottom")
    size = cols[0].slider("Grid size", 4, 10, 6, key="pool.grid_size")
    seed = cols[1].number_input("Seed", 0, 9_999, 0, key="pool.seed")
    cols[2].button("New numbers", key="pool.shuffle", on_click=_bump_seed)
    values = np.random.default_rng(int(seed)).integers(0, 10, (size, size))
    with st.expander("Edit the numbers"):
        # Text cells, headed 0…n−1 like the figure's axes: a number column would change what
        # is typed (2.5 → 25, −7 → 7, 500 → 99) before the page could see it.
        columns = [str(c) for c in range(size)]
        edited = st.data_editor(
            pd.DataFrame(values.astype(str), columns=columns),
            # Keyed by size and seed: new numbers start a fresh editor instead of replaying edits.
            key=f"pool.grid_edit.{size}.{seed}",
            hide_index=True,
            column_config={c: st.column_config.TextColumn(c) for c in columns},
        )
    grid, refused = checked_grid(edited, values)
    if refused:
        st.warning(
            "Not used (each keeps its generated number): "
            + "; ".join(refused)
            + f". A cell takes a number from {GRID_MIN} to {GRID_MAX}.",
            icon=":material/warning:",
        )
    return grid


GRID_MIN, GRID_MAX = -99, 99  # two digits each way keep the figure's cells readable


def checked_grid(edited: pd.DataFrame, fallback: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The edited grid as floats, and one phrase per refused cell: text, NaN, infinities and
    numbers outside ``GRID_MIN``…``GRID_MAX`` keep ``fallback``'s value."""
    grid = np.asarray(fallback, dtype=np.float64).copy()
    refused = []
    for (row, col), cell in np.ndenumerate(edited.to_numpy(dtype=object)):
        text = "" if cell is None else str(cell).strip()
        try:
            number = float(text.replace("−", "-"))
        except ValueError:
            number = math.nan
        if math.isfinite(number) and GRID_MIN <= number <= GRID_MAX:
            grid[row, col] = number
        else:
            refused.append(f"row {row}, column {col}: {text[:20] or 'empty'!r}")
    return grid, refused


def _move(delta: int, n: int) -> None:
    st.session_state["pool.step"] = (st.session_state.get("pool.step", 1) - 1 + delta) % n + 1


def step_through(trace: PoolTrace) -> None:
    """The input with the current window, the output so far, and the window's arithmetic;
    a play toggle steps on its own (only this fragment reruns)."""
    playing = st.toggle("Play (step through every window)", key="pool.play")
    st.fragment(run_every=PLAY_INTERVAL if playing else None)(_step_view)(trace, playing)


def _step_view(trace: PoolTrace, playing: bool) -> None:
    n = len(trace.steps)
    state = st.session_state
    state["pool.step"] = min(max(int(state.get("pool.step", 1)), 1), n)
    now = time.monotonic()
    if playing and now - state.get("pool._last_tick", 0.0) >= 0.9 * PLAY_INTERVAL:
        state["pool._last_tick"] = now
        state["pool.step"] = state["pool.step"] % n + 1
    cols = st.columns([1, 1, 5], vertical_alignment="bottom")
    cols[0].button("◀ Previous", key="pool.prev", on_click=_move, args=(-1, n), width="stretch")
    cols[1].button("Next ▶", key="pool.next", on_click=_move, args=(1, n), width="stretch")
    if n > 1:
        cols[2].slider("Window", 1, n, key="pool.step")
    index = state["pool.step"] - 1
    left, right = st.columns([3, 2])
    figure_in, figure_out = step_figures(trace, index)
    with left:
        st.markdown(f"**Input** {trace.input.shape[0]}×{trace.input.shape[1]}")
        figure_text.plotly_chart(figure_in, width="content", key="pool.fig_in", config=_STATIC)
    with right:
        st.markdown(f"**Output** {trace.output.shape[0]}×{trace.output.shape[1]}")
        figure_text.plotly_chart(figure_out, width="content", key="pool.fig_out", config=_STATIC)
    st.info(explain_step(trace, index), icon=":material/calculate:")


_STATIC = {"displayModeBar": False, "staticPlot": False}


def step_figures(trace: PoolTrace, index: int) -> tuple[go.Figure, go.Figure]:
    """:func:`input_figure` and :func:`output_figure` of window ``index``, built once per server
    for each exact grid (every value), settings and window."""
    return _step_figures(cache_key(trace.input, trace.spec, index), trace, index)


# Figures are read-only once built (st.plotly_chart serialises a copy), so every session can
# share them; building one validates every property and costs far more than drawing it.
@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def _step_figures(key: str, _trace: PoolTrace, index: int) -> tuple[go.Figure, go.Figure]:
    return input_figure(_trace, _trace.steps[index]), output_figure(_trace, index)


def explain_step(trace: PoolTrace, index: int) -> str:
    """Markdown: which window this is, where it reads, and its arithmetic written out."""
    step = trace.steps[index]
    n = len(trace.steps)
    where = (
        f"rows {_span(step.rows)}, columns {_span(step.cols)}"
        if not trace.spec.is_global
        else "the whole input"
    )
    pad_note = "" if trace.spec.is_global else _outside_note(trace, step)
    return (
        f"**Window {index + 1} of {n}** → output row {step.out_row}, column {step.out_col}. "
        f"It reads input {where}{pad_note}:\n\n`{step.expression}`"
    )


def _outside_note(trace: PoolTrace, step: WindowStep) -> str:
    """`` (2 of its cells are padding)``, or past the input for ceil_mode's partial window."""
    h, w = trace.input.shape
    (pad_h, pad_w) = trace.spec.padding_hw
    padding = beyond = 0
    for r in step.rows:
        for c in step.cols:
            if 0 <= r < h and 0 <= c < w:
                continue
            inside_padding = -pad_h <= r < h + pad_h and -pad_w <= c < w + pad_w
            padding += inside_padding
            beyond += not inside_padding
    parts = []
    if padding:
        parts.append(f"{_cells(padding)} padding")
    if beyond:
        parts.append(
            f"{_cells(beyond)} past the padded input (ceil_mode's partial window: not counted)"
        )
    return f" ({'; '.join(parts)})" if parts else ""


def _cells(n: int) -> str:
    return f"{n} of its cells {'is' if n == 1 else 'are'}"


def _number(i: int) -> str:
    return str(i) if i >= 0 else f"−{-i}"  # a true minus sign: "-1–0" reads as a dash


def _span(indices: tuple[int, ...]) -> str:
    """``2–4``, ``−1 to 0`` or ``0, 2, 4`` (dilated) — negative or too-large indices are outside
    the input."""
    if len(indices) == 1:
        return _number(indices[0])
    if indices[1] - indices[0] == 1:
        dash = "–" if indices[0] >= 0 else " to "
        return f"{_number(indices[0])}{dash}{_number(indices[-1])}"
    return ", ".join(_number(i) for i in indices)


def _extent(trace: PoolTrace) -> tuple[int, int, int, int]:
    """Row and column range to draw: the input plus every cell any window touches."""
    h, w = trace.input.shape
    rows = [r for s in trace.steps for r in s.rows] + [0, h - 1]
    cols = [c for s in trace.steps for c in s.cols] + [0, w - 1]
    return min(rows), max(rows), min(cols), max(cols)


def _padding_text(spec: PoolSpec) -> str:
    """What a padding cell is worth for this kind: max ignores it, sums count it as 0."""
    if spec.kind == "max":
        return "−∞"
    if spec.kind == "avg" and not spec.count_include_pad:
        return ""
    return "0"


def _layout(fig: go.Figure, n_rows: int, n_cols: int) -> go.Figure:
    fig.update_layout(
        width=n_cols * CELL_PX + 50,
        height=n_rows * CELL_PX + 40,
        margin={"l": 30, "r": 10, "t": 10, "b": 20},
        plot_bgcolor="#ffffff",
        showlegend=False,
    )
    fig.update_yaxes(autorange="reversed", showgrid=False, zeroline=False, dtick=1)
    fig.update_xaxes(showgrid=False, zeroline=False, dtick=1, side="top")
    return fig


def _rect(r0: float, c0: float, r1: float, c1: float, colour: str, **kw: object) -> dict:
    return {
        "type": "rect",
        "x0": c0 - 0.5,
        "x1": c1 + 0.5,
        "y0": r0 - 0.5,
        "y1": r1 + 0.5,
        "line": {"color": colour, "width": kw.pop("width", 4), "dash": kw.pop("dash", "solid")},
        **kw,
    }


def input_figure(trace: PoolTrace, step: WindowStep) -> go.Figure:
    """The (padded) input grid with numbers, the current window outlined and, for max
    pooling, the selected maximum highlighted."""
    h, w = trace.input.shape
    r_lo, r_hi, c_lo, c_hi = _extent(trace)
    rows = np.arange(r_lo, r_hi + 1)
    cols = np.arange(c_lo, c_hi + 1)
    inside = (rows[:, None] >= 0) & (rows[:, None] < h) & (cols[None, :] >= 0) & (cols[None, :] < w)
    z = np.full(inside.shape, np.nan)
    z[inside] = trace.input.ravel()
    text = np.full(inside.shape, "", dtype=object)
    text[inside] = [format_number(v) for v in trace.input.ravel()]
    ph, pw = trace.spec.padding_hw if not trace.spec.is_global else (0, 0)
    padded = (rows[:, None] >= -ph) & (rows[:, None] < h + ph)
    padded = padded & (cols[None, :] >= -pw) & (cols[None, :] < w + pw) & ~inside
    pad_z = np.where(padded, 1.0, np.where(inside, np.nan, 0.0))
    pad_text = np.where(padded, _padding_text(trace.spec), "")
    vmax = max(float(np.nanmax(trace.input)), 1.0)
    vmin = min(float(np.nanmin(trace.input)), 0.0)  # typed cells may be negative
    fig = go.Figure(
        [
            go.Heatmap(
                z=pad_z, x=cols, y=rows, text=pad_text, texttemplate="%{text}",
                colorscale=[[0, "#ffffff"], [1, "#e2e8f0"]], zmin=0, zmax=1,
                showscale=False, xgap=2, ygap=2, hoverinfo="skip",
                textfont={"color": "#64748b", "size": 12},
            ),
            go.Heatmap(
                z=z, x=cols, y=rows, text=text, texttemplate="%{text}",
                colorscale=INPUT_SCALE, zmin=vmin, zmax=vmax, showscale=False, xgap=2, ygap=2,
                hovertemplate="row %{y}, column %{x}: %{z}<extra></extra>",
                textfont={"color": "#0f172a", "size": 15},
            ),
        ]
    )  # fmt: skip
    shapes = []
    if not trace.spec.is_global and trace.spec.dilation_hw != (1, 1):
        shapes.append(
            _rect(step.rows[0], step.cols[0], step.rows[-1], step.cols[-1], WINDOW, width=1,
                  dash="dot")
        )  # fmt: skip
        shapes += [_rect(r, c, r, c, WINDOW, width=3) for r in step.rows for c in step.cols]
    else:
        shapes.append(
            _rect(step.rows[0], step.cols[0], step.rows[-1], step.cols[-1], WINDOW,
                  fillcolor="rgba(234, 88, 12, 0.10)")
        )  # fmt: skip
    if step.argmax is not None:
        r, c = step.argmax
        shapes.append(_rect(r, c, r, c, PICKED, width=4, fillcolor="rgba(220, 38, 38, 0.30)"))
    fig.update_layout(shapes=shapes)
    fig.update_xaxes(tickvals=list(range(w)), range=[c_lo - 0.5, c_hi + 0.5])
    fig.update_yaxes(tickvals=list(range(h)), range=[r_hi + 0.5, r_lo - 0.5])
    return _layout(fig, len(rows), len(cols))


def output_figure(trace: PoolTrace, index: int) -> go.Figure:
    """The output grid filled up to the current window, which is outlined."""
    out = trace.output
    oh, ow = out.shape
    done = np.arange(out.size).reshape(out.shape) <= index
    z = np.where(done, out, np.nan)
    text = np.where(done, np.vectorize(format_number, otypes=[object])(out), "")
    finite = out[np.isfinite(out)]
    vmax = float(finite.max()) if finite.size else 1.0
    zmin = min(0.0, float(finite.min()) if finite.size else 0.0)
    fig = go.Figure(
        [
            go.Heatmap(  # cells not computed yet: a light "?"
                z=np.where(done, np.nan, 0.0), x=np.arange(ow), y=np.arange(oh),
                text=np.where(done, "", "?"), texttemplate="%{text}",
                colorscale=[[0, "#f1f5f9"], [1, "#f1f5f9"]], showscale=False, xgap=2, ygap=2,
                hoverinfo="skip", textfont={"color": "#94a3b8", "size": 13},
            ),
            go.Heatmap(
                z=z, x=np.arange(ow), y=np.arange(oh), text=text, texttemplate="%{text}",
                colorscale=INPUT_SCALE, zmin=zmin, zmax=max(vmax, 1.0), showscale=False,
                xgap=2, ygap=2, hovertemplate="row %{y}, column %{x}: %{z}<extra></extra>",
                textfont={"color": "#0f172a", "size": 13},
            ),
        ]
    )  # fmt: skip
    step = trace.steps[index]
    fig.update_layout(
        shapes=[_rect(step.out_row, step.out_col, step.out_row, step.out_col, WINDOW)],
    )
    fig.update_xaxes(range=[-0.5, ow - 0.5])
    fig.update_yaxes(range=[oh - 0.5, -0.5])
    return _layout(fig, oh, ow)


def invariance_figure(curves: list[ShiftCurve], title_suffix: str) -> go.Figure:
    """Relative change and fraction unchanged versus shift, one line per stage."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Relative change ‖b − a‖ / ‖a‖", "Fraction of outputs unchanged"),
    )
    palette = ["#0f172a", "#dc2626", "#2563eb", "#16a34a", "#9333ea", "#ea580c"]
    for i, curve in enumerate(curves):
        dash = "dash" if curve.kind is None else "solid"
        style = {"color": palette[i % len(palette)], "dash": dash, "width": 2.5}
        fig.add_trace(
            go.Scatter(
                x=curve.shifts, y=curve.relative_change, name=curve.name, line=style,
                mode="lines+markers", legendgroup=curve.name,
            ),
            row=1, col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=curve.shifts, y=curve.unchanged_fraction, name=curve.name, line=style,
                mode="lines+markers", legendgroup=curve.name, showlegend=False,
            ),
            row=1, col=2,
        )  # fmt: skip
    fig.update_xaxes(title_text=f"shift k (pixels{title_suffix})", dtick=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[0, 1.05], row=1, col=2)
    fig.update_layout(
        height=380,
        margin={"l": 40, "r": 10, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def shared_invariance_figure(curves: tuple[ShiftCurve, ...], title_suffix: str) -> go.Figure:
    """:func:`invariance_figure`, built once per server for each exact set of curves (every
    value is hashed; the figure is read-only and shared by every session)."""
    return invariance_figure(list(curves), title_suffix)


def head_metrics(heads: HeadComparison) -> None:
    """The two classifier heads' parameter counts side by side."""
    cols = st.columns(3)
    flat = heads.channels * heads.height * heads.width
    cols[0].metric("Flatten + fully connected", f"{heads.flatten_fc:,}")
    cols[0].caption(
        f"`Linear({flat:,}, {heads.classes:,})`: {flat:,} × {heads.classes:,} weights + "
        f"{heads.classes:,} biases, {heads.flatten_fc * 4 / 2**20:,.1f} MiB in float32"
    )
    cols[1].metric("Global average pooling + fully connected", f"{heads.gap_fc:,}")
    cols[1].caption(
        f"pooling: {heads.pool_params} parameters; `Linear({heads.channels:,}, "
        f"{heads.classes:,})`: {heads.gap_fc * 4 / 2**20:,.1f} MiB in float32"
    )
    cols[2].metric("Flatten head is larger by", f"{heads.ratio:,.1f}×")


def torch_agreement(trace: PoolTrace) -> str:
    """One line saying whether PyTorch computes the same grid (and picks the same maxima)."""
    spec = trace.spec
    ours = pool2d(trace.input, spec).numpy()
    gap = float(np.nanmax(np.abs(np.where(np.isfinite(ours), ours - trace.output, 0.0))))
    text = f"PyTorch's `{type(pool_module(spec)).__name__}` gives the same grid"
    text += f" (largest difference {gap:.1e})." if gap else " (bit for bit)."
    if spec.kind in ("max", "global_max"):
        _, indices = max_pool2d_with_indices(trace.input, spec)
        width = trace.input.shape[1]
        same = all(
            s.argmax is None or s.argmax[0] * width + s.argmax[1] == i
            for s, i in zip(trace.steps, indices.flatten().tolist(), strict=True)
        )
        text += (
            " Its `return_indices` selects the same cells — on ties, the first maximum in "
            "reading order."
            if same
            else " **Its selected cells differ!**"
        )
    return text


# The shorter side a working image keeps, however thin the upload: the widest window the
# settings allow (6 cells, dilation 3: 16 pixels) fits; the shift experiment also needs room
# for the largest shift on both sides around the 3×3 edge filters (2 × 12 + 3 = 27).
MIN_SIDE = 16
INVARIANCE_MIN_SIDE = 32


def working_image(image: Image.Image, side: int, shortest: int = MIN_SIDE) -> Image.Image:
    """The image scaled so its longer side is ``side`` pixels, the shorter at least
    ``shortest`` (box filter: no ringing)."""
    return images.working_image(image, side, shortest)


def stretch_notice(source: ImageSource, side: int, shortest: int = MIN_SIDE) -> str | None:
    """What happened to a strip too thin to pool at ``side`` px, or ``None``."""
    width, height = source.image.size
    why = "the pooling windows and the 3×3 edge filters"
    return images.stretch_notice(width, height, side, shortest, why)


@dataclass(frozen=True)
class PooledPicture:
    """One pooling kind's result on the image, ready to show (or the reason it cannot be)."""

    kind: str
    label: str
    picture: bytes | None  # PNG: flat cells upscaled by whole pixels stay sharp and small
    shape: tuple[int, ...]
    vmax: float
    params: int
    error: str | None


@cache_on_image(max_entries=32)
def pooled_pictures(source: ImageSource, side: int, spec: PoolSpec) -> list[PooledPicture]:
    """Pool the working image with every kind and the same settings (cached on the image)."""
    small = working_image(source.image, side)
    pixels = to_array(small, grayscale=small.mode == "L")
    out = []
    for kind in KINDS:
        kind_spec = spec_for_kind(spec, kind)
        params = parameter_count(pool_module(kind_spec))
        try:
            pooled = pool2d(pixels, kind_spec).numpy()
        except ValueError as error:
            out.append(PooledPicture(kind, kind_spec.label, None, (), 0.0, params, str(error)))
            continue
        # Max and average stay in [0, 1]; an Lp norm can exceed 1 and is shown scaled down.
        vmax = max(1.0, float(pooled.max()))
        if pooled.ndim == 2:
            rgb = sequential_rgb(pooled, 0.0, vmax, gray=True)
        else:
            rgb = np.round(np.clip(pooled / vmax, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
        factor = max(1, DISPLAY_PX // max(rgb.shape[:2]))
        png = png_bytes(framed(upscale(rgb, factor)))
        out.append(PooledPicture(kind, kind_spec.label, png, pooled.shape, vmax, params, None))
    return out


DISPLAY_PX = 192


def pooled_row(pictures: list[PooledPicture]) -> None:
    """Every pooling kind's output side by side, with its shape and parameter count."""
    # Invalid settings usually fail every local kind for the same reason: say it once.
    for message in dict.fromkeys(p.error for p in pictures if p.error):
        st.error(message, icon=":material/error:")
    for col, pic in zip(st.columns(len(pictures)), pictures, strict=True):
        with col:
            st.markdown(f"**{pic.label}**")
            if pic.error:
                st.caption("No output with these settings.")
                continue
            shape = "×".join(str(d) for d in pic.shape)
            scale = "" if pic.vmax == 1.0 else f" · shown ÷ {pic.vmax:.2f}"
            picture.image(pic.picture, width=DISPLAY_PX, alt=f"The image after {pic.label} pooling")
            st.caption(f"output {shape} · **{pic.params} parameters**{scale}")


@cache_on_image(max_entries=32)
def image_invariance(
    source: ImageSource, side: int, spec: PoolSpec, max_shift: int, direction: str, mode: str
) -> InvarianceResult:
    """The shift experiment on the learner's image in grayscale (cached on the image)."""
    pixels = to_array(working_image(source.image, side, INVARIANCE_MIN_SIDE), grayscale=True)
    return invariance_experiment(pixels, spec, max_shift, direction, mode)


@cache_on_image(max_entries=32)
def edge_features(source: ImageSource, side: int) -> tuple[np.ndarray, np.ndarray]:
    """ReLU(edge convolution) feature maps of the grayscale image and their global averages."""
    pixels = to_array(working_image(source.image, side, INVARIANCE_MIN_SIDE), grayscale=True)
    with torch.no_grad():
        maps = F.relu(edge_conv()(torch.from_numpy(pixels)[None, None]))[0]
    check_spec(PoolSpec("global_avg"), *maps.shape[-2:])
    return maps.numpy(), pool2d(maps, PoolSpec("global_avg")).numpy().ravel()


EDGE_NAMES = ("vertical edges", "horizontal edges", "diagonal edges ↗", "diagonal edges ↘")


def feature_maps_picture(maps: np.ndarray) -> np.ndarray:
    """The C feature maps tiled in one row, on one shared colour scale."""
    vmax = float(maps.max()) or 1.0
    pictures = np.stack([sequential_rgb(m, 0.0, vmax) for m in maps])
    return tile(pictures, columns=len(maps), gap=4)


def gap_bars(values: np.ndarray) -> go.Figure:
    """The C global averages as a bar chart: the vector a classifier receives."""
    labels = [f"{v:.3f}" for v in values]
    fig = go.Figure(
        go.Bar(
            y=list(EDGE_NAMES), x=values, orientation="h", marker_color="#2563eb", text=labels,
            textposition="outside", cliponaxis=False,
        )
    )  # fmt: skip
    fig.update_layout(height=220, margin={"l": 10, "r": 40, "t": 10, "b": 40})
    fig.update_xaxes(title_text="global average (one number per channel)", rangemode="tozero")
    fig.update_yaxes(autorange="reversed")
    return fig


WORK_SIDES = (32, 48, 64, 96, 128)
INVARIANCE_SIDE = 128
SHIFT_MODE_LABELS = {"crop": "camera pan", "roll": "circular roll", "zeros": "zero fill"}
SHIFT_MODE_HELP = (
    "Camera pan: both versions are crops of the same photo, so every pixel is real. Circular "
    "roll: what leaves one side re-enters the other. Zero fill: a black band enters. Local "
    "pooling is compared only where both versions see the same real content, so the choice "
    "changes nothing there; global pooling sees the whole image, so for it the choice is "
    "everything (roll makes it trivially invariant)."
)


def invariance_section(result: InvarianceResult, stage: str, spec: PoolSpec) -> None:
    """The change-versus-shift chart for the chosen stage, and what to read from it."""
    on_conv = stage == "conv output"
    curves = [c for c in result.curves if c.kind is None or (c.stage == "conv+pool") == on_conv]
    direction = "" if result.direction == "right" else f", {result.direction}"
    figure_text.plotly_chart(
        shared_invariance_figure(tuple(curves), direction), width="stretch", key="pool.inv_fig"
    )
    conv = result.curve("conv")
    local = [c for c in curves if c.kind in ("max", "avg", "lp")]
    k1 = 1 if len(conv.shifts) > 1 else 0
    stride = spec.stride_hw[1] if result.direction != "down" else spec.stride_hw[0]
    lines = [
        f"**Convolution is equivariant, not invariant.** Shifted by 1 pixel, its output at the "
        f"same place changes by {conv.relative_change[k1]:.0%}; moved back by 1 pixel it "
        f"matches to {max(v for v in conv.aligned_change if v is not None):.1e} at every shift.",
    ]
    if local:
        best = min(local, key=lambda c: c.relative_change[k1])
        lines.append(
            f"**Pooling is only approximately invariant, for small shifts.** At k = 1 the "
            f"least-changed is {best.name} ({best.relative_change[k1]:.0%} change, "
            f"{best.unchanged_fraction[k1]:.0%} of outputs exactly unchanged); the change "
            f"grows with k."
        )
        aligned = [
            (k, v)
            for k, v in zip(best.shifts, best.aligned_change, strict=True)
            if k and v is not None
        ]
        if aligned:
            k, v = aligned[0]
            lines.append(
                f"A shift by a whole stride ({stride} px) just moves the pooled map by "
                f"{plural(k // stride, 'cell')}: moved back, {best.name} matches to {v:.1e}. "
                "Pooling is "
                f"equivariant to shifts by multiples of its stride, and in between it changes."
            )
    st.markdown("\n\n".join(f"- {line}" for line in lines))
    st.caption(
        f"Grayscale, {INVARIANCE_SIDE} px longer side; compared on the {result.view_shape[0]}×"
        f"{result.view_shape[1]} view inset by {result.max_shift} px. Local outputs: only "
        f"cells whose input window stays {result.max_shift} px inside the view in the shift "
        f"direction (the same cells for every k). 'Unchanged' means equal up to float rounding "
        f"(|b − a| ≤ 10⁻⁵ × the largest value)."
    )


def gap_bridge(source: ImageSource, side: int) -> None:
    """C×H×W feature maps → global average pooling → a C-vector for a classifier."""
    maps_png, bars, (c, h, w) = _gap_views(source, side)
    st.markdown(
        f"The edge convolution turns the image into **{c} feature maps of {h}×{w}** "
        f"({c * h * w:,} numbers). Global average pooling replaces each map by its mean: "
        f"**{c} numbers**, one per channel, whatever the image size. A classifier is then "
        f"just `Linear({c}, classes)` on that vector."
    )
    left, right = st.columns([3, 2])
    with left:
        picture.image(
            maps_png,
            width="stretch",
            alt="Feature maps of the four edge filters, side by side",
        )
        st.caption(" · ".join(EDGE_NAMES) + " (ReLU of each edge filter; one colour scale)")
    with right:
        figure_text.plotly_chart(bars, width="stretch", key="pool.gap_fig")


def _gap_views(source: ImageSource, side: int) -> tuple[bytes, go.Figure, tuple[int, ...]]:
    """The feature maps as a PNG, the bar chart of their averages and the maps' shape."""
    return _gap_views_for(cache_key(source, side), source, side)


# Per image and working size, the same for every session: a resource (the figure is shared
# read-only, the PNG is bytes), keyed on the image's exact digest.
@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def _gap_views_for(
    key: str, _source: ImageSource, side: int
) -> tuple[bytes, go.Figure, tuple[int, ...]]:
    maps, averages = edge_features(_source, side)
    return png_bytes(feature_maps_picture(maps)), gap_bars(averages), tuple(maps.shape)

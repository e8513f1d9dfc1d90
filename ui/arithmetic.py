"""Widgets and renderers of the stride, padding & dilation page (engine: cnnlab.arithmetic)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from cnnlab import arithmetic as ar
from cnnlab.wording import noun, plural
from ui import figure_text
from ui.heap import FIGURES_PER_CACHE
from ui.page_links import CHAIN, TEXTBOOK_ROWS

# Okabe–Ito colours (safe for every common colour-vision deficiency); shapes and text back them
# up (× on unreached pixels, 0 on zeros, thick outlines on the current window).
INPUT_COLOUR = "#56B4E9"  # sky blue: a real input pixel
ZERO_COLOUR = "#F2F2F2"  # padding or inserted zero
UNREACHED_COLOUR = "#D55E00"  # vermillion: a pixel no window ever reads
TAP_COLOUR = "#0072B2"  # blue: where the kernel's taps are now
CURRENT_COLOUR = "#E69F00"  # orange: the output being computed
DONE_COLOUR = "#FBE3B0"  # light orange: outputs already computed
PENDING_COLOUR = "#FFFFFF"
MAX_PICTURE_CELLS = 40  # per side, padding included: bigger grids are unreadable anyway
MAX_TORCH_ELEMENTS = 4_000_000  # the check runs on a classroom server: keep it cheap
MAX_CHAIN_MACS = 300_000_000

PARAMS = ("kernel", "stride", "dilation", "output_padding")
LABELS = {
    "kernel": "Kernel size K",
    "stride": "Stride S",
    "dilation": "Dilation D",
    "output_padding": "Output padding",
}
DEFAULTS = {"kernel": 5, "stride": 2, "dilation": 1, "output_padding": 0}


@dataclass(frozen=True)
class Config:
    """Everything the calculator's widgets chose, as plain values."""

    op: str
    sizes: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: object
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    ceil_mode: bool

    def analyse(self) -> ar.LayerArithmetic:
        """Check the configuration with the engine (raises ValueError)."""
        return ar.analyse(
            self.op,
            self.sizes,
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
            self.output_padding,
            self.ceil_mode,
        )


# Each axis has a letter for its size; 1-D inputs are a row of pixels, so their length is kept
# with the width when the learner switches between 1-, 2- and 3-D.
AXIS_LETTERS = {"Length": "L", "Depth": "D", "Height": "H", "Width": "W"}
AXIS_KEYS = {"Length": "width", "Depth": "depth", "Height": "height", "Width": "width"}
_KEPT = "arith._kept"  # the last value of every calculator number, shown or not


def _kept_number(label: str, key: str, default: int, **kw) -> int:
    """A number input that keeps its value while hidden: Streamlit forgets a widget's state
    when a run does not draw it (a 3-D depth while in 2-D), so it is restored from here."""
    kept = st.session_state.setdefault(_KEPT, {})
    if key not in st.session_state:
        st.session_state[key] = kept.get(key, default)
    # value= states the default the widget would have (its proto); the session value wins.
    value = st.number_input(label, value=default, step=1, key=key, **kw)
    kept[key] = value
    return int(value)


def _numbers(name: str, label: str, ndim: int, per_dim: bool, default: int, **kw) -> tuple:
    """One number input for every dimension (keyed ``arith.<name>.all``) or one per dimension
    (``arith.<name>.<axis>``, the axis named as in :data:`AXIS_KEYS`)."""
    if not per_dim:
        return (_kept_number(label, f"arith.{name}.all", default, **kw),) * ndim
    values = []
    for name_of_axis, column in zip(ar.axis_names(ndim), st.columns(ndim), strict=True):
        with column:
            values.append(
                _kept_number(
                    f"{label} · {name_of_axis}",
                    f"arith.{name}.{AXIS_KEYS[name_of_axis]}",
                    default,
                    **kw,
                )
            )
    return tuple(values)


def calculator_controls() -> Config:
    """Operation, dimensionality, input size and every hyper-parameter; returns a Config."""
    op = st.selectbox(
        "Operation", ar.OPERATIONS, format_func=ar.OPERATION_NAMES.get, key="arith.op"
    )
    ndim = st.radio(
        "Dimensions",
        (1, 2, 3),
        index=1,
        horizontal=True,
        key="arith.ndim",
        format_func=lambda n: f"{n}-D",
    )
    # Inputs are often not square (28×32), so sizes are always per dimension.
    sizes = []
    for name, column in zip(ar.axis_names(ndim), st.columns(ndim), strict=True):
        with column:
            sizes.append(
                _kept_number(
                    f"Input {name.lower()} {AXIS_LETTERS[name]}",
                    f"arith.size.{AXIS_KEYS[name]}",
                    28,
                    min_value=0,
                    max_value=1024,
                    help="The input size along this axis: the formula's W.",
                )
            )
    per_dim = ndim > 1 and not st.toggle(
        "Same hyper-parameters in every dimension", value=True, key="arith.square"
    )
    # Zero and negative values are allowed on purpose: the engine explains why they fail.
    bounds = {"min_value": -16, "max_value": 64}
    kernel = _numbers("kernel", LABELS["kernel"], ndim, per_dim, DEFAULTS["kernel"], **bounds)
    stride = _numbers("stride", LABELS["stride"], ndim, per_dim, DEFAULTS["stride"], **bounds)
    modes = ["number"] if op != "conv" else ["number", "same", "valid", "left/right"]
    mode = st.radio("Padding", modes, horizontal=True, key="arith.padding_mode")
    if mode in ("same", "valid"):
        padding: object = mode
    elif mode == "left/right":
        left = _numbers("pad_left", "Padding left/top", ndim, per_dim, 1, **bounds)
        right = _numbers("pad_right", "Padding right/bottom", ndim, per_dim, 2, **bounds)
        pairs = tuple(zip(left, right, strict=True))
        padding = pairs[0] if ndim == 1 else pairs
    else:
        padding = _numbers("padding", "Padding P", ndim, per_dim, 1, **bounds)
    dilation = (1,) * ndim
    if op != "avg_pool":
        dilation = _numbers("dilation", LABELS["dilation"], ndim, per_dim, 1, **bounds)
    output_padding = (0,) * ndim
    if op == "conv_transpose":
        output_padding = _numbers(
            "output_padding", LABELS["output_padding"], ndim, per_dim, 0, **bounds
        )
    ceil_mode = op.endswith("pool") and st.checkbox(
        "ceil_mode (round up: keep a last, partial window)", key="arith.ceil_mode"
    )
    return Config(
        op,
        tuple(int(s) for s in sizes),
        kernel,
        stride,
        padding,
        dilation,
        output_padding,
        ceil_mode,
    )


@st.cache_data(max_entries=256, show_spinner=False)
def _torch_shape(config: Config) -> tuple[int, ...]:
    # Pure and hashable: a class of 30 trying the same numbers shares one torch run.
    return ar.run_torch(config.analyse())


def _elements(shape: tuple[int, ...]) -> int:
    total = 1
    for n in shape:
        total *= n
    return total


def render_result(config: Config, layer: ar.LayerArithmetic) -> None:
    """The formula in symbols and with numbers, the output shape and PyTorch's confirmation."""
    ndim = len(layer.dims)
    symmetric = all(d.symmetric for d in layer.dims)
    ceil = layer.dims[0].ceil_mode
    st.latex(ar.symbolic_latex(layer.op, ceil, symmetric))
    for name, dim in zip(ar.axis_names(ndim), layer.dims, strict=True):
        st.latex(f"\\text{{{name}}}: \\quad {dim.latex()}")
    shape = "×".join(map(str, layer.output_shape))
    st.metric("Output size", shape, help="Spatial size; batch and channel dimensions are kept.")
    fn = {
        "conv": "conv",
        "conv_transpose": "conv_transpose",
        "max_pool": "max_pool",
        "avg_pool": "avg_pool",
    }[layer.op] + f"{ndim}d"
    input_shape = (1, 1, *layer.input_shape)
    if max(_elements(input_shape), _elements(layer.output_shape)) > MAX_TORCH_ELEMENTS:
        st.info(
            f"Too large to run here (more than {MAX_TORCH_ELEMENTS:,} values): the size above "
            "comes from the formula, which the test suite checks against PyTorch."
        )
    else:
        try:
            got = _torch_shape(config)
        except ValueError as error:
            st.error(str(error))
        else:
            if got == layer.output_shape:
                st.success(
                    f"Verified: PyTorch's `F.{fn}` on `torch.zeros{input_shape}` returned "
                    f"`{(1, 1, *got)}`.",
                    icon=":material/check_circle:",
                )
            else:
                st.error(f"PyTorch returned {got}, the formula {layer.output_shape}.")
    _explain(layer)


def _explain(layer: ar.LayerArithmetic) -> None:
    """Say in words what is special about this configuration."""
    names = ar.axis_names(len(layer.dims))
    notes = []
    for name, dim in zip(names, layer.dims, strict=True):
        where = f"**{name}**: " if len(layer.dims) > 1 else ""
        if dim.padding_label == "same" and not dim.symmetric:
            notes.append(
                f"{where}'same' needs D·(K−1) = {dim.pad_left + dim.pad_right} zeros in total, an "
                f"odd number, so PyTorch puts {dim.pad_left} on the left/top and "
                f"**{dim.pad_right} on the right/bottom** (it pads the input with F.pad first)."
            )
        elif not dim.symmetric:
            notes.append(
                f"{where}asymmetric padding: modelled as `F.pad` with ({dim.pad_left}, "
                f"{dim.pad_right}) zeros, then the convolution with padding 0."
            )
        if dim.op == "conv_transpose":
            notes.append(f"{where}{_transposed_note(dim)}")
            continue
        cov = ar.coverage(dim)
        if dim.remainder and not dim.ceil_mode:
            lost = (
                f"real input {noun(len(cov.trailing), 'pixel')} {_list(cov.trailing)} "
                f"{'is' if len(cov.trailing) == 1 else 'are'} ignored (marked ×)"
                if cov.trailing
                else "they are only padding, so no real pixel is lost"
            )
            notes.append(
                f"{where}(W + P_l + P_r − D·(K−1) − 1) mod S = "
                f"({dim.size} + {dim.pad_left} + {dim.pad_right} − {dim.effective_kernel}) mod "
                f"{dim.stride} = **{dim.remainder}**: after the last window, "
                f"{plural(dim.remainder, 'cell')} of the padded input "
                f"{'is' if dim.remainder == 1 else 'are'} left over, too few for another stride "
                f"— {lost}."
            )
        elif cov.trailing:
            notes.append(
                f"{where}input {noun(len(cov.trailing), 'pixel')} {_list(cov.trailing)} "
                f"{'comes' if len(cov.trailing) == 1 else 'come'} after the last window and "
                f"{'is' if len(cov.trailing) == 1 else 'are'} never reached (marked ×)."
            )
        if cov.skipped:
            notes.append(
                f"{where}input {noun(len(cov.skipped), 'pixel')} {_list(cov.skipped)} "
                f"{'falls' if len(cov.skipped) == 1 else 'fall'} between the kernel taps of "
                "every window (stride or dilation jumps over "
                f"{'it' if len(cov.skipped) == 1 else 'them'})."
            )
        if dim.ceil_dropped_last:
            notes.append(
                f"{where}ceil_mode would add one more window, but it would start in the right "
                "padding, so PyTorch drops it (the “− 1”)."
            )
    for note in notes:
        st.markdown(f"- {note}")


def _transposed_note(dim: ar.DimArithmetic) -> str:
    """The transposed convolution as zero insertion, padding and a stride-1 convolution, each
    step's arithmetic written out so that the numbers add up to the output size."""
    eq = ar.transposed_as_conv(
        dim.size, dim.kernel, dim.stride, dim.pad_left, dim.output_padding, dim.dilation
    )
    k, s, d, p = dim.kernel, dim.stride, dim.dilation, dim.pad_left
    span = d * (k - 1) + 1
    crop = (
        " (a negative pad crops that many cells instead)"
        if min(eq.pad_left, eq.pad_right) < 0
        else ""
    )
    return (
        f"as a stride-1 convolution: put S − 1 = {plural(s - 1, 'zero')} between neighbouring "
        "pixels, "
        f"(W − 1)·S + 1 = ({dim.size} − 1)·{s} + 1 = {eq.inserted_size} cells; pad "
        f"D·(K − 1) − P = {d}·({k} − 1) − {p} = {eq.pad_left} on the left and, with the output "
        f"padding, {eq.pad_left} + {dim.output_padding} = {eq.pad_right} on the right{crop}: "
        f"{eq.inserted_size} + {eq.pad_left} + {eq.pad_right} = {eq.conv_input_size} cells. "
        f"The flipped kernel spans D·(K − 1) + 1 = {span} cells and slides with stride 1: "
        f"{eq.conv_input_size} − {span} + 1 = **{eq.output}** outputs."
    )


def _list(values: tuple[int, ...]) -> str:
    shown = ", ".join(map(str, values[:12]))
    return shown + (", …" if len(values) > 12 else "")


# --- the picture ------------------------------------------------------------------------------


def picture_grid(layer: ar.LayerArithmetic) -> tuple[list[ar.DimArithmetic], list[ar.Coverage]]:
    """The dimensions the picture draws (the last two) and their window coverage."""
    dims = list(layer.dims[-2:])
    return dims, [ar.coverage(d) for d in dims]


def _cell_kinds(dim: ar.DimArithmetic, cov: ar.Coverage) -> list[str]:
    """What each cell along one dimension of the drawn input is."""
    if dim.op == "conv_transpose":
        eq = ar.transposed_as_conv(
            dim.size, dim.kernel, dim.stride, dim.pad_left, dim.output_padding, dim.dilation
        )
        kinds = ["zero"] * eq.conv_input_size
        for p in eq.source_positions():
            if p is not None:
                kinds[p] = "input"
        return kinds
    kinds = ["zero"] * dim.pad_left + ["input"] * dim.size + ["zero"] * dim.pad_right
    for i in cov.unreached:
        kinds[dim.pad_left + i] = "unreached"
    return kinds


def window_figure(layer: ar.LayerArithmetic, position: int) -> go.Figure:
    """conv_arithmetic-style picture: padded input, the window at ``position``, the output."""
    dims, covs = picture_grid(layer)
    if len(dims) == 1:  # 1-D: one row
        row_kinds, col_kinds = ["input"], _cell_kinds(dims[0], covs[0])
        out_rows, out_cols = 1, dims[0].output
        r, c = 0, position
        row_taps, col_taps = (0,), covs[0].windows[c]
        col_shift = dims[0].pad_left if dims[0].op != "conv_transpose" else 0
        row_shift = 0
    else:
        row_kinds, col_kinds = _cell_kinds(dims[0], covs[0]), _cell_kinds(dims[1], covs[1])
        out_rows, out_cols = dims[0].output, dims[1].output
        r, c = divmod(position, out_cols)
        row_taps, col_taps = covs[0].windows[r], covs[1].windows[c]
        shifts = [d.pad_left if d.op != "conv_transpose" else 0 for d in dims]
        row_shift, col_shift = shifts
    n_rows, n_cols = len(row_kinds), len(col_kinds)
    codes = {"input": 0, "zero": 1, "unreached": 2}
    z, text, hover = [], [], []
    for i, rk in enumerate(row_kinds):
        z_row, t_row, h_row = [], [], []
        for j, ck in enumerate(col_kinds):
            kind = (
                "zero"
                if "zero" in (rk, ck)
                else ("unreached" if "unreached" in (rk, ck) else "input")
            )
            z_row.append(codes[kind])
            t_row.append({"zero": "0", "unreached": "×", "input": ""}[kind])
            h_row.append(f"row {i - row_shift}, col {j - col_shift}: {kind}")
        z.append(z_row)
        text.append(t_row)
        hover.append(h_row)
    scale = [
        [0.0, INPUT_COLOUR],
        [1 / 3, INPUT_COLOUR],
        [1 / 3, ZERO_COLOUR],
        [2 / 3, ZERO_COLOUR],
        [2 / 3, UNREACHED_COLOUR],
        [1.0, UNREACHED_COLOUR],
    ]
    gap = 2
    x0 = n_cols + gap  # the output grid sits to the right of the input
    out_z = [
        [0 if (i, j) < (r, c) else (2 if (i, j) == (r, c) else 1) for j in range(out_cols)]
        for i in range(out_rows)
    ]
    traces = [
        go.Heatmap(
            z=z,
            text=text,
            texttemplate="%{text}",
            hovertext=hover,
            hoverinfo="text",
            colorscale=scale,
            zmin=0,
            zmax=2,
            showscale=False,
            xgap=1,
            ygap=1,
            textfont={"color": "#333333", "size": 11},
        ),
        go.Heatmap(
            z=out_z,
            x0=x0,
            dx=1,
            y0=0,
            dy=1,
            showscale=False,
            xgap=1,
            ygap=1,
            zmin=0,
            zmax=2,
            colorscale=[[0, DONE_COLOUR], [0.5, PENDING_COLOUR], [1, CURRENT_COLOUR]],
            hovertext=[[f"output ({i}, {j})" for j in range(out_cols)] for i in range(out_rows)],
            hoverinfo="text",
        ),
    ]
    traces.append(_grid_lines(x0, out_rows, out_cols))
    # Shapes are collected and set once: each fig.add_shape re-validates every shape added
    # before it, which made this picture cost ~0.2 s per window position.
    # The window: its full (dilated) footprint dashed, each tap a thick square.
    taps_r = [t + row_shift for t in row_taps]
    taps_c = [t + col_shift for t in col_taps]
    shapes: list[dict] = [
        {
            "type": "rect",
            "x0": min(taps_c) - 0.5,
            "x1": max(taps_c) + 0.5,
            "y0": min(taps_r) - 0.5,
            "y1": max(taps_r) + 0.5,
            "line": {"color": TAP_COLOUR, "width": 2, "dash": "dash"},
        }
    ]
    shapes += [
        {
            "type": "rect",
            "x0": tc - 0.45,
            "x1": tc + 0.45,
            "y0": tr - 0.45,
            "y1": tr + 0.45,
            "line": {"color": TAP_COLOUR, "width": 3},
            "fillcolor": "rgba(0,114,178,0.35)",
        }
        for tr in taps_r
        for tc in taps_c
    ]
    shapes.append(
        {
            "type": "rect",
            "x0": x0 + c - 0.5,
            "x1": x0 + c + 0.5,
            "y0": r - 0.5,
            "y1": r + 0.5,
            "line": {"color": "#000000", "width": 3},
        }
    )
    for label, colour, symbol in (
        ("input pixel", INPUT_COLOUR, "square"),
        (
            "zero (padding" + (" / inserted" if layer.op == "conv_transpose" else "") + ")",
            ZERO_COLOUR,
            "square",
        ),
        ("never reached (×)", UNREACHED_COLOUR, "square"),
        ("kernel taps now", TAP_COLOUR, "square-open"),
        ("output now", CURRENT_COLOUR, "square"),
        ("output done", DONE_COLOUR, "square"),
        ("output to come", PENDING_COLOUR, "square"),
    ):
        traces.append(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=label,
                marker={
                    "color": colour,
                    "symbol": symbol,
                    "size": 12,
                    "line": {"color": "#666666", "width": 1},
                },
            )
        )
    title_in = "equivalent stride-1 input" if layer.op == "conv_transpose" else "padded input"
    annotations = [
        {"x": (n_cols - 1) / 2, "y": -1.2, "text": title_in, "showarrow": False},
        {"x": x0 + (out_cols - 1) / 2, "y": -1.2, "text": "output", "showarrow": False},
    ]
    rows = max(n_rows, out_rows)
    cell = max(12, min(28, 640 // max(rows, 1), 1100 // (x0 + out_cols)))
    fig = go.Figure(traces, layout={"shapes": shapes, "annotations": annotations})
    fig.update_xaxes(visible=False, range=[-0.6, x0 + out_cols - 0.4])
    fig.update_yaxes(
        visible=False, autorange=False, range=[rows - 0.4, -1.8], scaleanchor="x", scaleratio=1
    )
    fig.update_layout(
        height=int(rows * cell + 1.4 * cell + 110),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        plot_bgcolor="#FFFFFF",
        legend={"orientation": "h", "y": -0.02, "yanchor": "top", "x": 0},
        dragmode=False,
    )
    return fig


def _grid_lines(x0: int, rows: int, cols: int) -> go.Scatter:
    """A border around every output cell, so white cells still to come can be counted (one
    trace of line segments: a shape per cell would cost a validation each)."""
    x: list[float | None] = []
    y: list[float | None] = []
    for i in range(rows + 1):
        x += [x0 - 0.5, x0 + cols - 0.5, None]
        y += [i - 0.5, i - 0.5, None]
    for j in range(cols + 1):
        x += [x0 + j - 0.5, x0 + j - 0.5, None]
        y += [-0.5, rows - 0.5, None]
    return go.Scatter(
        x=x, y=y, mode="lines", line={"color": "#9E9E9E", "width": 1}, hoverinfo="skip",
        showlegend=False, name="output cell borders",
    )  # fmt: skip


def position_label(layer: ar.LayerArithmetic, position: int) -> str:
    """Where the window is, in words: output cell and the input rows/columns its taps read."""
    dims, covs = picture_grid(layer)
    if len(dims) == 1:
        taps = covs[0].windows[position]
        return f"Output {position}: taps at input {noun(len(taps), 'position')} {_signed(taps)}"
    r, c = divmod(position, dims[1].output)
    rows, cols = _signed(covs[0].windows[r]), _signed(covs[1].windows[c])
    return f"Output ({r}, {c}): taps at rows {rows} × columns {cols}"


def _signed(indices: Sequence[int]) -> str:
    """``−1, 0, 1``: a true minus sign, which a hyphen next to a comma or dash is not."""
    return ", ".join(str(i) if i >= 0 else f"−{-i}" for i in indices)


def _step(delta: int, count: int) -> None:
    st.session_state["arith.pos"] = (st.session_state.get("arith.pos", 1) - 1 + delta) % count + 1


def render_picture(layer: ar.LayerArithmetic) -> None:
    """The stepping picture (in a fragment so Play and Next only redraw the picture)."""
    dims, _ = picture_grid(layer)
    sizes = [len(_cell_kinds(d, ar.coverage(d))) for d in dims]
    if max(sizes) > MAX_PICTURE_CELLS or max(d.output for d in dims) > MAX_PICTURE_CELLS:
        st.info(
            f"The picture is drawn for grids of up to {MAX_PICTURE_CELLS} cells per side "
            "(padding included). Try an input of 5 to 12 pixels to see every window."
        )
        return
    if len(layer.dims) == 3:
        st.caption("3-D: the picture shows one height × width slice; depth works the same way.")
    playing = st.toggle("▶ Play", key="arith.play", help="Step through the positions by itself")
    st.fragment(_picture_fragment, run_every=0.9 if playing else None)(layer, playing)


def _picture_fragment(layer: ar.LayerArithmetic, playing: bool) -> None:
    dims, _ = picture_grid(layer)
    count = 1
    for d in dims:
        count *= d.output
    state = st.session_state
    position = min(max(int(state.get("arith.pos", 1)), 1), count)
    if playing and time.monotonic() - state.get("arith.last_step", 0.0) > 0.6:
        position = position % count + 1
        state["arith.last_step"] = time.monotonic()
    state["arith.pos"] = position
    back, forward, slider = st.columns([1.3, 1.3, 6], vertical_alignment="bottom")
    with back:
        st.button("◀ Back", key="arith.prev", on_click=_step, args=(-1, count))
    with forward:
        st.button("Next ▶", key="arith.next", on_click=_step, args=(1, count))
    with slider:
        if count > 1:
            st.slider("Output position", 1, count, key="arith.pos")
    position = state["arith.pos"] - 1
    st.markdown(f"**Position {position + 1} of {count}** — {position_label(layer, position)}")
    figure_text.plotly_chart(
        shared_window_figure(layer, position),
        key="arith.picture",
        config={"displayModeBar": False},
    )


@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def shared_window_figure(layer: ar.LayerArithmetic, position: int) -> go.Figure:
    """:func:`window_figure`, built once per server for each exact layer and position.

    A class stepping through the same example shares one figure; it is read-only
    (``st.plotly_chart`` serialises a copy), so sharing it between sessions is safe.
    """
    return window_figure(layer, position)


# --- chain calculator -------------------------------------------------------------------------

CHAIN_COLUMNS = ("layer", "out", "kernel", "stride", "padding", "dilation")


def chain_frame(rows: Sequence[dict]) -> pd.DataFrame:
    """The chain editor's table of ``rows`` (the textbook chain unless a link sent another)."""
    # Float columns: the editor casts a typed 2.5 to an integer column's type (2) before the
    # page could refuse it.
    numbers = {c: "float64" for c in ("out", "kernel", "stride", "dilation")}
    return pd.DataFrame(list(rows), columns=list(CHAIN_COLUMNS)).astype(numbers)


def _chain_base() -> list[dict]:
    """The rows the chain editor starts from: the link's chain when one was sent (or when
    Streamlit forgot the editor's edits while another page was shown), else the textbook."""
    state = st.session_state
    version = state.setdefault("arith.chain.version", 0)
    wanted = state.get(CHAIN.key)
    if wanted is not None and wanted != state.get("arith.chain.shown"):
        state["arith.chain.version"] = version + 1
        state["arith.chain.base"] = CHAIN.to_rows(wanted)
    elif wanted is not None and f"arith.chain.editor.{version}" not in state:
        state["arith.chain.base"] = CHAIN.to_rows(wanted)
    return state.setdefault("arith.chain.base", TEXTBOOK_ROWS)


def layers_from_frame(frame: pd.DataFrame) -> list[ar.ChainLayer]:
    """Rows of the editor → ChainLayers; raises ValueError for a row that can't be read."""
    layers = []
    for number, row in enumerate(frame.to_dict("records"), start=1):
        kind = row.get("layer")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"Layer {number}: choose a layer type.")

        def number_or(value, default, number=number):
            if value is None or pd.isna(value):
                return default
            try:
                whole = float(value)
            except (TypeError, ValueError, OverflowError):  # text sent by a script
                whole = math.nan
            if not math.isfinite(whole) or whole != int(whole):  # 2.5 is not cut to 2
                raise ValueError(f"Layer {number}: {value!r:.20} is not a whole number.")
            return int(whole)

        padding = str(row.get("padding") or "0").strip().lower()
        if padding not in ("same", "valid"):
            try:
                padding = int(padding)
            except ValueError:
                raise ValueError(
                    f"Layer {number}: padding {padding!r} is not a number, 'same' or 'valid'."
                ) from None
        layers.append(
            ar.ChainLayer(
                kind,
                number_or(row.get("out"), None),
                number_or(row.get("kernel"), 1),
                number_or(row.get("stride"), None),
                padding,
                number_or(row.get("dilation"), 1),
            )
        )
    return layers


@st.cache_data(max_entries=128, show_spinner=False)
def _chain_torch(input_shape: tuple[int, ...], layers: tuple[ar.ChainLayer, ...]) -> list:
    return ar.run_chain_torch(input_shape, layers)


def render_chain() -> None:
    """A data_editor of layers and the shape after each, verified with an nn.Sequential."""
    c, h, w = st.columns(3)
    channels = c.number_input("Input channels", 1, 64, 3, key="arith.chain.channels")
    height = h.number_input("Input height", 1, 512, 32, key="arith.chain.height")
    width = w.number_input("Input width", 1, 512, 32, key="arith.chain.width")
    base = _chain_base()
    version = st.session_state["arith.chain.version"]
    if st.button("Reset to the textbook example", key="arith.chain.reset"):
        st.session_state["arith.chain.version"] = version = version + 1
        st.session_state["arith.chain.base"] = base = TEXTBOOK_ROWS
    frame = st.data_editor(
        chain_frame(base),
        key=f"arith.chain.editor.{version}",
        num_rows="dynamic",
        hide_index=True,
        column_config={
            "layer": st.column_config.SelectboxColumn(
                "Layer", options=ar.CHAIN_KINDS, required=True
            ),
            # No bounds or steps: the browser would quietly change what is typed (2.5 → 25,
            # 40 → 15); layers_from_frame and the engine refuse a bad value in words instead.
            "out": st.column_config.NumberColumn("Channels / features", format="plain"),
            "kernel": st.column_config.NumberColumn("Kernel", format="plain"),
            "stride": st.column_config.NumberColumn("Stride (blank: default)", format="plain"),
            "padding": st.column_config.TextColumn("Padding (n, same, valid)"),
            "dilation": st.column_config.NumberColumn("Dilation", format="plain"),
        },
    )
    # The link holds the rows as edited (nothing when a cell holds what a link cannot carry).
    rows = [
        {k: (None if pd.isna(v) else v) for k, v in r.items()} for r in frame.to_dict("records")
    ]
    st.session_state[CHAIN.key] = st.session_state["arith.chain.shown"] = CHAIN.of_rows(rows)
    input_shape = (int(channels), int(height), int(width))
    try:
        layers = layers_from_frame(frame)
        steps = ar.chain_shapes(input_shape, layers)
    except ValueError as error:
        st.error(str(error))
        return
    table = pd.DataFrame(
        [
            {
                "#": 0,
                "layer": "input",
                "output shape": "×".join(map(str, input_shape)),
                "parameters": 0,
                "MACs": 0,
                "note": "",
            }
        ]
        + [
            {
                "#": i,
                "layer": s.layer.kind,
                "output shape": s.label,
                "parameters": s.params,
                "MACs": s.macs,
                "note": s.note,
            }
            for i, s in enumerate(steps, start=1)
        ]
    )
    st.dataframe(table, hide_index=True, key="arith.chain.table")
    total_params = sum(s.params for s in steps)
    total_macs = sum(s.macs for s in steps)
    final = steps[-1].label if steps else "×".join(map(str, input_shape))
    st.markdown(
        f"**Output: {final}** · {total_params:,} parameters · {total_macs:,} multiply-adds "
        "per image"
    )
    if total_macs > MAX_CHAIN_MACS:
        st.info("Too big to run here; the shapes come from the formulas (tested against PyTorch).")
        return
    try:
        shapes = _chain_torch(input_shape, tuple(layers))
    except (RuntimeError, ValueError) as error:
        st.error(f"PyTorch refused the chain: {str(error).splitlines()[0]}")
        return
    if shapes == [s.shape for s in steps]:
        st.success(
            "Verified: an `nn.Sequential` of these layers on "
            f"`torch.zeros(1, {channels}, {height}, {width})` produced every shape above.",
            icon=":material/check_circle:",
        )
    else:
        st.error("PyTorch disagrees with the formulas: " + str(shapes))


# --- quiz -------------------------------------------------------------------------------------


def _new_question() -> None:
    st.session_state["arith.quiz.seed"] = int(st.session_state.get("arith.quiz.seed", 1)) + 1


def render_quiz() -> None:
    """A seeded question, a number to type, instant feedback with the worked formula, a score."""
    state = st.session_state
    score = state.setdefault("arith.quiz.score", {"right": 0, "asked": 0, "seen": []})
    left, middle, right = st.columns([2, 1, 1], vertical_alignment="bottom")
    difficulty = left.radio(
        "Difficulty",
        ar.DIFFICULTIES,
        horizontal=True,
        key="arith.quiz.difficulty",
        help="easy: kernel, stride, padding · medium: + dilation, pooling · hard: + ceil_mode, "
        "transposed convolution",
    )
    seed = middle.number_input(
        "Question seed",
        min_value=0,
        max_value=10**9,
        value=1,
        step=1,
        key="arith.quiz.seed",
        help="The same seed and difficulty always give the same question: share it with a class.",
    )
    right.button("New question", key="arith.quiz.new", on_click=_new_question)
    question = ar.make_question(int(seed), difficulty)
    st.markdown(question.prompt())
    answer = st.number_input(
        "Your answer (output height)",
        min_value=0,
        max_value=100_000,
        value=None,
        step=1,
        # One answer box per question: an answer typed for another question (before the
        # difficulty or the seed changed) is never scored against this one.
        key=f"arith.quiz.answer.{difficulty}.{int(seed)}",
        placeholder="type a number",
    )
    checked = st.button("Check", key="arith.quiz.check", type="primary")
    if checked and answer is None:
        st.warning("Type a number first.")
    elif checked:
        ident = [difficulty, int(seed)]
        right_answer = ar.check_answer(question, int(answer))
        if ident not in score["seen"]:  # only the first try of a question counts
            score["seen"].append(ident)
            score["asked"] += 1
            score["right"] += int(right_answer)
        if right_answer:
            st.success(f"Right: the output is {question.answer}×{question.answer}.")
        else:
            st.error(f"Not quite: you said {int(answer)}, the output is {question.answer}.")
        dim = question.dim()
        st.latex(ar.symbolic_latex(question.op, question.ceil_mode))
        st.latex(dim.latex())
        if dim.ceil_dropped_last:
            st.caption("ceil_mode's extra window would start in the padding, so PyTorch drops it.")
    st.metric("Score", f"{score['right']} / {score['asked']}")

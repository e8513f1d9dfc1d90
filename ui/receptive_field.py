"""Widgets and renderers of the receptive-field page; every number comes from
``cnnlab.receptive_field``. Widget keys start with ``rf.``."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image
from plotly.colors import sample_colorscale

from cnnlab.receptive_field import (
    KINDS,
    PRESETS,
    EffectiveField,
    Layer,
    LayerField,
    Preset,
    Region,
    TreeLevel,
    analyse_stack,
    as_layer,
    centre_path,
    effective_receptive_field,
    neuron_region,
    trained_receptive_field,
    tree_dependencies,
)
from cnnlab.trained import (
    TrainedRun,
    list_trained,
    load_trained,
    receptive_field_preset,
    receptive_field_stack,
    stack_prefix,
)
from cnnlab.viz import png_bytes, sequential_rgb, upscale
from ui import figure_text, picture, url_state
from ui.heap import FIGURES_PER_CACHE
from ui.image_source import ImageSource, cache_key
from ui.link_codec import token
from ui.page_links import RF_STACK, rf_rows

COLUMNS = ("name", "kind", "kernel", "stride", "padding", "dilation", "channels")
FIELD_BLUE = "#2563eb"
PAD_ORANGE = "#ea580c"
PADDING_GREY = "#e2e8f0"


# --- the stack editor ---------------------------------------------------------------------------


def _editor_key() -> str:
    return f"rf.editor.{st.session_state['rf.editor_version']}"


def _set_rows(rows: list[dict]) -> None:
    """Start a fresh editor on ``rows`` (a preset, a reordering, or a link's stack)."""
    state = st.session_state
    state["rf.base"] = rows
    state["rf.editor_version"] = state.get("rf.editor_version", -1) + 1
    state["rf.stack"] = state["rf._stack_shown"] = RF_STACK.of_rows(rows)


def _start(preset: Preset, first_visit: bool = False) -> None:
    """Editor rows, input size and neuron choice of a freshly chosen preset (on a first visit,
    the input size and neuron a link sent are kept)."""
    _set_rows(rf_rows(preset))
    if first_visit:
        st.session_state.setdefault("rf.size", preset.input_size)
        return
    st.session_state["rf.size"] = preset.input_size
    url_state.forget("rf.layer", "rf.row", "rf.col")


def _load_preset(presets: Mapping[str, Preset]) -> None:
    """Preset changed: new editor rows, its input size, and the centre neuron of its last layer."""
    _start(presets[st.session_state["rf.preset"]])


def _move(step: int) -> None:
    """Move the chosen row up (−1) or down (+1), starting a fresh editor on the new order."""
    rows = list(st.session_state.get("rf.rows", st.session_state["rf.base"]))
    i = st.session_state["rf.move_row"] - 1
    j = i + step
    if 0 <= i < len(rows) and 0 <= j < len(rows):
        rows[i], rows[j] = rows[j], rows[i]
        _set_rows(rows)
        st.session_state["rf.move_row"] = j + 1


def _follow_link() -> None:
    """Rows from ``rf.stack`` when something other than the editor set it (a link), or when
    Streamlit forgot the editor's edits while another page was shown."""
    state = st.session_state
    wanted = state.get("rf.stack")
    if wanted is None:
        return
    if wanted != state.get("rf._stack_shown"):
        _set_rows(RF_STACK.to_rows(wanted))
        by_token = {token(name): name for name in PRESETS}
        if wanted in by_token:
            state["rf.preset"] = by_token[wanted]
    elif _editor_key() not in state:
        state["rf.base"] = RF_STACK.to_rows(wanted)


def _clean(value: object) -> object:
    """NaN / NA cells (a new row the learner has not filled in yet) become ``None``."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value


def stack_editor(trained: Mapping[str, Preset] | None = None) -> tuple[list[dict], int]:
    """Preset (the classics, then the learner's ``trained`` networks), input size and the
    editable layer rows; returns the rows and the input size."""
    presets = {**PRESETS, **(trained or {})}
    state = st.session_state
    if "rf.preset" not in state and "rf._preset" in state:  # forgot while another page was shown
        state["rf.preset"] = state["rf._preset"]
    if "rf.base" not in state or state.get("rf.preset") not in presets:
        # First visit (perhaps through a link, whose stack is kept), or the trained network
        # that was chosen has been deleted meanwhile.
        first_visit, linked = "rf.base" not in state, state.get("rf.stack")
        state["rf.preset"] = next(iter(PRESETS))
        _start(PRESETS[state["rf.preset"]], first_visit=first_visit)
        if first_visit and linked is not None:
            state["rf.stack"] = linked
    _follow_link()
    left, right = st.columns([3, 2])
    preset = left.selectbox(
        "Start from a preset",
        list(presets),
        key="rf.preset",
        on_change=_load_preset,
        args=(presets,),
        help="Famous stacks with their published hyper-parameters, then the networks you "
        "trained on the Train page.",
    )
    size = right.number_input(
        "Input size (pixels, square)",
        1,
        512,
        next(iter(PRESETS.values())).input_size,  # the value is set by the preset chosen
        key="rf.size",
        help="Height and width of the input.",
    )
    state["rf._preset"] = preset
    st.caption(presets[preset].source)
    # Float columns: the editor casts a typed 2.5 to an integer column's type (2) before the
    # engine could refuse it.
    numbers = {c: "float64" for c in ("kernel", "stride", "padding", "dilation", "channels")}
    frame = pd.DataFrame(st.session_state["rf.base"], columns=list(COLUMNS)).astype(numbers)
    # Rows are counted from 1 here as in the layer table, the layer picker, "Row to move" and
    # every message (a new row continues the numbering).
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    edited = st.data_editor(
        frame,
        key=_editor_key(),
        num_rows="dynamic",
        hide_index=False,
        width="stretch",
        column_config={
            "_index": st.column_config.NumberColumn("Row", disabled=True),
            "name": st.column_config.TextColumn("Name", default=""),
            "kind": st.column_config.SelectboxColumn(
                "Kind", options=list(KINDS), required=True, default="conv"
            ),
            # No bounds: the browser would quietly change what is typed (500 → 64); the
            # engine refuses a bad value in words, naming its row.
            "kernel": st.column_config.NumberColumn("Kernel", default=3, format="plain"),
            "stride": st.column_config.NumberColumn("Stride", default=1, format="plain"),
            "padding": st.column_config.NumberColumn("Padding", default=0, format="plain"),
            "dilation": st.column_config.NumberColumn("Dilation", default=1, format="plain"),
            "channels": st.column_config.NumberColumn(
                "Channels", help="Conv output channels (ERF only).", format="plain"
            ),
        },
    )
    rows = [{c: _clean(v) for c, v in row.items()} for row in edited.to_dict("records")]
    st.session_state["rf.rows"] = rows
    # The link holds the rows as edited (nothing when a cell holds what a link cannot carry).
    st.session_state["rf.stack"] = st.session_state["rf._stack_shown"] = RF_STACK.of_rows(rows)
    url_state.sync()
    if rows:
        a, b, c = st.columns([2, 1, 1], vertical_alignment="bottom")
        if st.session_state.get("rf.move_row", 1) > len(rows):
            st.session_state["rf.move_row"] = len(rows)
        a.number_input("Row to move", 1, len(rows), key="rf.move_row")
        b.button("Move up", key="rf.up", on_click=_move, args=(-1,), icon=":material/arrow_upward:")
        c.button(
            "Move down", key="rf.down", on_click=_move, args=(1,), icon=":material/arrow_downward:"
        )
    st.caption(
        "Add a row with **+** under the table, delete rows by ticking them and pressing the bin. "
        "Kernel, stride, padding and dilation of ReLU / batch norm / dropout rows are ignored: "
        "they work on each pixel alone."
    )
    return rows, int(size)


def rows_to_layers(rows: Sequence[dict]) -> list[dict]:
    """Editor rows as engine layer dicts (an empty kind means conv, empty numbers the defaults)."""
    return [
        {**row, "kind": row.get("kind") or "conv", "name": row.get("name") or ""} for row in rows
    ]


# --- the per-layer table ------------------------------------------------------------------------


def _axis_text(f: LayerField, attr: str) -> str:
    a, b = getattr(f.rows, attr), getattr(f.cols, attr)
    fmt = (lambda v: f"{v:g}") if attr == "start" else str
    return fmt(a) if a == b else f"{fmt(a)}×{fmt(b)}"


def layer_table(
    fields: Sequence[LayerField], rows: Sequence[dict], error_index: int | None, size: int
) -> None:
    """One line per editor row: output size, jump, field size, start, and a status."""
    records = []
    for i, row in enumerate(rows):
        record = {"Row": i + 1, "Name": row.get("name") or "", "Kind": row.get("kind") or "conv"}
        if i < len(fields):
            f = fields[i]
            record |= {
                "Output": f"{f.output_hw[0]}×{f.output_hw[1]}",
                "Jump": _axis_text(f, "jump"),
                "RF size": _axis_text(f, "rf"),
                "Start": _axis_text(f, "start"),
                "Status": "sees the whole input" if f.covers_input else "ok",
            }
        elif i == error_index:
            record["Status"] = "cannot run (see the message above)"
        else:
            record["Status"] = "not reached"
        records.append(record)
    columns = ["Row", "Name", "Kind", "Output", "Jump", "RF size", "Start", "Status"]
    st.dataframe(pd.DataFrame(records, columns=columns), hide_index=True, width="stretch")
    covering = [f for f in fields if f.covers_input]
    if covering:
        first = covering[0]
        later = len(fields) - first.index - 1
        if later == 1:
            extra = (
                " The layer after it adds depth but no more context: its field is bigger than "
                "the image, the extra part is padding."
            )
        elif later:
            extra = (
                f" The {later} layers after it add depth but no more context: their fields are "
                "bigger than the image, the extra part is padding."
            )
        else:
            extra = ""
        st.warning(
            f"From row {first.index + 1} on, every neuron already sees the whole {size}×{size} "
            f"input (field {_axis_text(first, 'rf')} px).{extra}",
            icon=":material/warning:",
        )


# --- the neuron picker and the overlay ----------------------------------------------------------


def _png_uri(rgb: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


MAX_CROP_ASPECT = 4  # a longer image loses over 3/4 of itself to a centre crop: stretch it


def square_input(image: Image.Image, size: int) -> np.ndarray:
    """The learner's image as ``size``×``size`` RGB: centre-cropped to a square, or stretched
    whole when it is so long and thin that the centre square would be a sliver of it."""
    w, h = image.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    if max(w, h) > MAX_CROP_ASPECT * side:
        box = (0, 0, w, h)
    square = image.convert("RGB").crop(box).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(square)


def square_text(image: Image.Image, size: int) -> str:
    """How :func:`square_input` made the image square, in words."""
    w, h = image.size
    if w == h:
        return f"resized to the {size}×{size} input"
    side = min(w, h)
    if max(w, h) > MAX_CROP_ASPECT * side:
        return (
            f"**stretched** whole to the {size}×{size} input, distorted: it is {w}×{h}, and its "
            f"centre square ({side}×{side}) would keep too little of it"
        )
    return f"centre-cropped to a {side}×{side} square and resized to the {size}×{size} input"


def _on_pick() -> None:
    """A click on the chart: the neuron under it (or whose field is centred nearest) is chosen."""
    points = st.session_state["rf.grid"].selection.points
    if not points:
        return
    point = points[0]
    fields, index = st.session_state["rf._picker"]
    f = fields[index]
    custom = point.get("customdata")
    # Plotly hands a row of 2-D customdata back as a list or as an index-keyed dict.
    if isinstance(custom, dict):
        custom = [custom[k] for k in sorted(custom, key=int)]
    if isinstance(custom, list | tuple) and len(custom) >= 2:
        r, c = custom[0], custom[1]
    elif "x" in point and "y" in point:
        r = round((point["y"] - f.rows.start) / f.rows.jump)
        c = round((point["x"] - f.cols.start) / f.cols.jump)
    else:
        return
    st.session_state["rf.row"] = int(min(max(r, 0), f.output_hw[0] - 1))
    st.session_state["rf.col"] = int(min(max(c, 0), f.output_hw[1] - 1))


def _keep_place() -> None:
    """The layer changed: choose the new layer's neuron centred nearest the old one's field
    centre, so the field stays where the learner was looking."""
    shown = st.session_state.get("rf._picker")
    new = st.session_state.get("rf.layer")
    if shown is None or new is None:
        return
    fields, old = shown
    if not (0 <= old < len(fields) and 0 <= new < len(fields)):
        return
    oh, ow = fields[old].output_hw
    neuron = (
        min(int(st.session_state.get("rf.row", oh // 2)), oh - 1),
        min(int(st.session_state.get("rf.col", ow // 2)), ow - 1),
    )
    st.session_state["rf.row"], st.session_state["rf.col"] = fields[new].same_place(
        fields[old], neuron
    )


def pick_layer(fields: Sequence[LayerField]) -> int:
    """Layer select box (defaults to the last layer); returns its 0-based index (shown, like
    every row of the page, counted from 1)."""
    options = list(range(len(fields)))
    url_state.fit("rf.layer", options, options[-1], "for this stack")
    return st.selectbox(
        "Layer",
        options,
        key="rf.layer",
        on_change=_keep_place,
        format_func=lambda i: (
            f"{i + 1} · {fields[i].layer.name or fields[i].layer.kind} "
            f"({fields[i].layer.describe()}) → {fields[i].output_hw[0]}×{fields[i].output_hw[1]}"
        ),
    )


def pick_neuron(f: LayerField) -> tuple[int, int]:
    """Row and column sliders of the chosen layer's output (clamped when the layer changes)."""
    oh, ow = f.output_hw
    where = f"for layer {f.index + 1}'s {oh}×{ow} output"
    for key, n in (("rf.row", oh), ("rf.col", ow)):
        # Set on every run: a slider whose range changed (an edited stack) is a new widget to
        # Streamlit, which would start it at 0 instead of the neuron the learner was on.
        st.session_state[key] = url_state.fit(key, range(n), n // 2, where)
    a, b = st.columns(2)
    row = a.slider("Neuron row", 0, max(oh - 1, 1), key="rf.row", disabled=oh == 1)
    col = b.slider("Neuron column", 0, max(ow - 1, 1), key="rf.col", disabled=ow == 1)
    return min(row, oh - 1), min(col, ow - 1)


def _rect_path(top: float, left: float, bottom: float, right: float) -> tuple[list, list]:
    """Closed outline of pixels ``top..bottom`` × ``left..right`` (pixel edges at ±0.5)."""
    x = [left - 0.5, right + 0.5, right + 0.5, left - 0.5, left - 0.5, None]
    y = [top - 0.5, top - 0.5, bottom + 0.5, bottom + 0.5, top - 0.5, None]
    return x, y


def _padding_bands(region: Region) -> tuple[list, list]:
    """The part of the span outside the image, as up to four rectangles."""
    if region.clipped is None:
        return _rect_path(region.top, region.left, region.bottom, region.right)
    ct, cl, cb, cr = region.clipped
    bands = [
        (region.top, region.left, ct - 1, region.right),
        (cb + 1, region.left, region.bottom, region.right),
        (ct, region.left, cb, cl - 1),
        (ct, cr + 1, cb, region.right),
    ]
    xs: list = []
    ys: list = []
    for t, left, b, r in bands:
        if t <= b and left <= r:
            x, y = _rect_path(t, left, b, r)
            xs += x
            ys += y
    return xs, ys


def _base_figure(image: np.ndarray, f: LayerField, title: str) -> go.Figure:
    """The image at pixel coordinates, on a grey padding background spanning every field."""
    h, w = image.shape[:2]
    lo_r, hi_r = f.rows.span(0)[0], f.rows.span(f.output_hw[0] - 1)[1]
    lo_c, hi_c = f.cols.span(0)[0], f.cols.span(f.output_hw[1] - 1)[1]
    y_range = (max(hi_r, h - 1) + 1.5, min(lo_r, 0) - 1.5)
    x_range = (min(lo_c, 0) - 1.5, max(hi_c, w - 1) + 1.5)
    fig = go.Figure(go.Image(source=_png_uri(image), x0=0, y0=0, dx=1, dy=1, hoverinfo="skip"))
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        plot_bgcolor=PADDING_GREY,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=520,
        legend={"orientation": "h", "y": -0.1, "yanchor": "top"},
    )
    fig.update_xaxes(range=x_range, showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(
        range=y_range, showgrid=False, zeroline=False, scaleanchor="x", constrain="domain"
    )
    return fig


def field_figure(image: np.ndarray, f: LayerField, region: Region, neuron: tuple[int, int]):
    """The chosen neuron's field on the image; every neuron of the layer is a clickable dot."""
    fig = _base_figure(image, f, "Click a dot (a neuron of this layer) to see its field")
    oh, ow = f.output_hw
    # At most ~48 dots per side stay clickable; bigger maps show every k-th neuron.
    step_r, step_c = max(1, -(-oh // 48)), max(1, -(-ow // 48))
    rr, cc = np.meshgrid(np.arange(0, oh, step_r), np.arange(0, ow, step_c), indexing="ij")
    fig.add_trace(
        go.Scatter(
            x=(f.cols.start + cc * f.cols.jump).ravel(),
            y=(f.rows.start + rr * f.rows.jump).ravel(),
            customdata=np.stack([rr.ravel(), cc.ravel()], axis=1),
            mode="markers",
            marker={"size": 6, "color": "rgba(255,255,255,0.55)", "line": {"width": 1}},
            hovertemplate="neuron (%{customdata[0]}, %{customdata[1]})<extra></extra>",
            name="Neurons (field centres)",
        )
    )
    if region.clipped is not None:
        x, y = _rect_path(*region.clipped)
        fig.add_trace(
            go.Scatter(
                x=x, y=y, fill="toself", mode="lines", name="Field inside the image",
                line={"color": FIELD_BLUE, "width": 3}, fillcolor="rgba(37,99,235,0.18)",
                hoverinfo="skip",
            )
        )  # fmt: skip
    if region.padded_area:
        x, y = _padding_bands(region)
        fig.add_trace(
            go.Scatter(
                x=x, y=y, fill="toself", mode="lines", name="Field in the padding (zeros)",
                line={"color": PAD_ORANGE, "width": 2, "dash": "dash"},
                fillcolor="rgba(234,88,12,0.15)",
                fillpattern={"shape": "/", "fgcolor": PAD_ORANGE, "size": 8, "solidity": 0.2},
                hoverinfo="skip",
            )
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=[f.cols.centre(neuron[1])], y=[f.rows.centre(neuron[0])], mode="markers",
            marker={"symbol": "x", "size": 12, "color": FIELD_BLUE, "line": {"width": 2}},
            name=f"Neuron ({neuron[0]}, {neuron[1]})", hoverinfo="skip",
        )
    )  # fmt: skip
    return fig


def show_field(overlay: go.Figure, fields: Sequence[LayerField], index: int, neuron: tuple):
    """The clickable ``overlay`` (:func:`field_figures`) and the numbers of the chosen field."""
    region = neuron_region(fields, index, *neuron)
    st.session_state["rf._picker"] = (fields, index)
    left, right = st.columns([3, 2])
    with left:
        figure_text.plotly_chart(
            overlay,
            key="rf.grid",
            on_select=_on_pick,
            selection_mode="points",
            width="stretch",
            config={"displayModeBar": False},
        )
    with right:
        st.markdown(
            f"**Neuron ({neuron[0]}, {neuron[1]}) of layer {index + 1}** sees input rows "
            f"**{region.top} … {region.bottom}** and columns **{region.left} … {region.right}**: "
            f"a {region.height}×{region.width} field."
        )
        st.metric("Field inside the image", f"{region.clipped_area} px")
        st.metric(
            "Field in the padding",
            f"{region.padded_area} px ({region.padded_fraction:.0%})",
            help="Share of the theoretical field that lies outside the image.",
        )
        st.caption(
            "Negative coordinates and coordinates past the last pixel lie in the zero "
            "padding (grey): the neuron's weights there only ever multiply zeros, so a neuron "
            "at the border really looks at a smaller, off-centre piece of the image."
        )
    return region


def field_figures(
    source: ImageSource,
    size: int,
    fields: Sequence[LayerField],
    index: int,
    neuron: tuple[int, int],
) -> tuple[go.Figure, go.Figure]:
    """The clickable overlay (:func:`field_figure`) and :func:`growth_figure`, built once per
    server for each exact image, input size, stack up to ``index`` and neuron."""
    layers = tuple(f.layer for f in fields[: index + 1])
    key = cache_key(source, size, layers, index, tuple(neuron))
    return _field_figures(key, source, size, fields, index, tuple(neuron))


# Figures are read-only once built (st.plotly_chart serialises a copy), so every session shares
# them: building one (with the image as a PNG inside) costs far more than sending it.
@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def _field_figures(
    key: str,
    _source: ImageSource,
    _size: int,
    _fields: Sequence[LayerField],
    _index: int,
    _neuron: tuple[int, int],
) -> tuple[go.Figure, go.Figure]:
    image = square_input(_source.image, _size)
    region = neuron_region(_fields, _index, *_neuron)
    return (
        field_figure(image, _fields[_index], region, _neuron),
        growth_figure(image, _fields, _index, _neuron),
    )


def growth_figure(image: np.ndarray, fields: Sequence[LayerField], index: int, neuron: tuple):
    """Nested fields of the neurons on the chosen neuron's centre line, one per window layer."""
    f = fields[index]
    fig = _base_figure(image, f, "The same neuron's field, layer by layer")
    path = centre_path(fields, index, *neuron)
    window_layers = [i for i in range(index + 1) if fields[i].layer.is_window]
    # Plasma (purple to yellow) is ordered and colour-blind safe, unlike a rainbow such as Turbo;
    # its ends are cut off so every square stays visible on a photo and on the grey.
    colours = sample_colorscale("Plasma", list(np.linspace(0.2, 0.85, max(len(window_layers), 2))))
    for n, i in enumerate(window_layers):
        region = neuron_region(fields, i, *path[i])
        x, y = _rect_path(region.top, region.left, region.bottom, region.right)
        fig.add_trace(
            go.Scatter(
                x=x, y=y, mode="lines", line={"color": colours[n], "width": 2.5},
                name=f"{i + 1} {fields[i].layer.name or fields[i].layer.kind}: "
                f"{region.height}×{region.width}", hoverinfo="name",
            )
        )  # fmt: skip
    fig.update_layout(legend={"orientation": "v", "y": 1, "yanchor": "top", "x": 1.02})
    return fig


# --- effective receptive field ------------------------------------------------------------------


ERF_NETWORKS = 4
ERF_CHANNELS = 8
ERF_WORK = 1_000_000
"""Pixels × layers × samples one ERF may cost: small stacks get more samples, big ones ≥ 8."""


@st.cache_data(max_entries=32, ttl=3600, show_spinner=False)
def cached_erf(layers: tuple[Layer, ...], size: int, index: int, samples: int) -> EffectiveField:
    """ERF of the stack's centre neuron at ``index`` (pure; shared between learners)."""
    return effective_receptive_field(
        list(layers), size, index, channel_cap=ERF_CHANNELS, networks=ERF_NETWORKS, samples=samples
    )


def erf_cost(fields: Sequence[LayerField], index: int) -> int:
    """Rough work of one ERF sample (pixels × layers)."""
    return fields[0].rows.image_size * fields[0].cols.image_size * (index + 1)


def erf_samples(fields: Sequence[LayerField], index: int) -> int:
    """Random images per network: as many as the work budget allows, between 8 and 32."""
    return int(min(max(ERF_WORK // erf_cost(fields, index), 8), 32))


def _outline(rgb: np.ndarray, region: Region, scale: int, colour: tuple) -> np.ndarray:
    """Draw the clipped field's outline (2 px) on an image already upscaled by ``scale``."""
    if region.clipped is None:
        return rgb
    out = rgb.copy()
    t, left, b, r = (v * scale for v in region.clipped)
    b, r = b + scale - 1, r + scale - 1
    out[t : t + 2, left : r + 1] = colour
    out[b - 1 : b + 1, left : r + 1] = colour
    out[t : b + 1, left : left + 2] = colour
    out[t : b + 1, r - 1 : r + 1] = colour
    return out


@dataclass(frozen=True)
class ErfPictures:
    """What :func:`show_erf` draws: the two pictures (PNG) and the centre-row profile chart."""

    theory: bytes
    effective: bytes
    profile: go.Figure


def erf_pictures(erf: EffectiveField) -> ErfPictures:
    """The theoretical and effective fields as PNGs and the profile chart, built once per server
    for each exact gradient (hashed in full) and field."""
    return _erf_pictures(cache_key(erf.gradient, erf.region), erf)


@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def _erf_pictures(key: str, _erf: EffectiveField) -> ErfPictures:
    erf = _erf
    h, w = erf.gradient.shape
    scale = max(1, 320 // max(h, w))
    region = erf.region
    theory = np.zeros((h, w))
    if region.clipped:
        t, left, b, r = region.clipped
        theory[t : b + 1, left : r + 1] = 1.0
    white = (255, 255, 255)
    theory_rgb = _outline(upscale(sequential_rgb(theory, 0, 1), scale), region, scale, white)
    effective = upscale(sequential_rgb(erf.gradient, 0), scale)
    effective_rgb = _outline(effective, region, scale, white)
    row = erf.region.top + (erf.region.height - 1) // 2
    row = min(max(row, 0), h - 1)
    profile = erf.gradient[row] / max(erf.gradient[row].max(), 1e-30)
    box = theory[row]
    fig = go.Figure()
    fig.add_scatter(x=np.arange(w), y=box, name="Theoretical (uniform)", line={"shape": "hv"})
    fig.add_scatter(x=np.arange(w), y=profile, name="Effective (measured)")
    fig.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": f"Profile through input row {row} (scaled to 1)", "font": {"size": 13}},
        xaxis_title="input column",
        legend={"orientation": "h", "y": 1.15},
    )
    return ErfPictures(png_bytes(theory_rgb), png_bytes(effective_rgb), fig)


def show_erf(erf: EffectiveField, image_side: int) -> None:
    """Theoretical square next to the measured ERF, the 95 % share and a centre-row profile."""
    pictures = erf_pictures(erf)
    region = erf.region
    a, b_col = st.columns(2)
    picture.image(
        pictures.theory,
        a,
        width=320,
        alt="The theoretical receptive field: a uniform square.",
        caption=f"Theoretical field: every pixel of the {region.height}×{region.width} square "
        "can matter equally.",
    )
    picture.image(
        pictures.effective,
        b_col,
        width=320,
        alt="The effective receptive field: mean gradient magnitude over the input.",
        caption=f"Effective field: mean |gradient| (0 = dark … {erf.gradient.max():.3g} = "
        "bright), theoretical square outlined.",
    )
    # A sentence, not st.metric: a metric's value never wraps, and this one is wider than a phone.
    st.markdown(
        f"95 % of the gradient mass lies in **{erf.mass_share:.0%} of the theoretical field**: "
        f"{erf.mass_pixels} of its {region.clipped_area} pixels inside the image."
    )
    figure_text.plotly_chart(pictures.profile, width="stretch", config={"displayModeBar": False})


# --- the learner's trained networks -------------------------------------------------------------


@dataclass(frozen=True)
class TrainedPresets:
    """The owner's trained networks as presets (by label), and those that cannot be one."""

    presets: dict[str, Preset]
    runs: dict[str, TrainedRun]
    unusable: tuple[str, ...]


def trained_presets(owner: str) -> TrainedPresets:
    """The owner's trained networks (from the Train page) as receptive-field presets."""
    from ui.training import store_or_explain

    presets, found, unusable = {}, {}, []
    runs = store_or_explain()
    for run in list_trained(runs, owner) if runs is not None else ():
        try:
            presets[run.label] = receptive_field_preset(run)
        except ValueError as exc:
            unusable.append(f"{run.label}: {exc}")
        else:
            found[run.label] = run
    return TrainedPresets(presets, found, tuple(unusable))


def chosen_trained(
    trained: TrainedPresets, layers: Sequence[dict]
) -> tuple[TrainedRun | None, bool]:
    """The trained run behind the chosen preset, if any, and whether the stack is still exactly
    its network (edited rows describe another network, whose trained ERF does not exist)."""
    run = trained.runs.get(st.session_state.get("rf.preset", ""))
    if run is None:
        return None, False
    try:
        same = tuple(as_layer(layer) for layer in layers) == trained.presets[run.label].layers
    except ValueError:
        same = False
    return run, same


@st.cache_data(max_entries=16, ttl=3600, show_spinner=False)
def cached_trained_erf(
    owner: str, run_id: str, weights_version: int, size: int, index: int, samples: int
) -> EffectiveField:
    """ERF of the owner's trained network cut after stack row ``index`` (keyed on the owner, so
    nobody else's request reaches it, and on the weights file's version)."""
    from ui.training import store

    trained = load_trained(store(), owner, run_id)
    stack = receptive_field_stack(trained.run.spec)
    fields = analyse_stack(stack.layers, size)
    prefix = stack_prefix(trained.model, stack, index)
    return trained_receptive_field(
        prefix, fields, index, trained.run.input_shape[0], samples=samples
    )


def weights_version(owner: str, run_id: str) -> int:
    """The trained weights file's modification time (ns): a cache key that changes on resume."""
    from ui.training import store

    path = store().weights_path(owner, run_id)
    return 0 if path is None else path.stat().st_mtime_ns


def show_erf_pair(random: EffectiveField | None, trained: EffectiveField) -> None:
    """The trained network's ERF next to the randomly initialised one's, and both profiles."""
    h, w = trained.gradient.shape
    scale = max(1, 320 // max(h, w))
    region = trained.region
    left, right = st.columns(2)
    views = (("Randomly initialised", random, left), ("Your trained network", trained, right))
    for title, erf, col in views:
        if erf is None:
            col.caption(f"{title}: measure it above to compare.")
            continue
        image = upscale(sequential_rgb(erf.gradient, 0), scale)
        col.image(
            _outline(image, region, scale, (255, 255, 255)),
            width=320,
            alt=f"Effective receptive field, {title.lower()}.",
            caption=f"{title}: mean |gradient| (0 = dark … {erf.gradient.max():.3g} = bright).",
        )
        col.metric(
            f"{title}: 95 % of the gradient in",
            f"{erf.mass_share:.0%} of the field",
            help=f"{erf.mass_pixels} of the {region.clipped_area} pixels of the theoretical "
            "field inside the image.",
        )
    row = min(max(region.top + (region.height - 1) // 2, 0), h - 1)
    fig = go.Figure()
    for title, erf in (("Randomly initialised", random), ("Trained", trained)):
        if erf is None:
            continue
        profile = erf.gradient[row] / max(erf.gradient[row].max(), 1e-30)
        fig.add_scatter(x=np.arange(w), y=profile, name=title)
    fig.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": f"Profile through input row {row} (scaled to 1)", "font": {"size": 13}},
        xaxis_title="input column",
        legend={"orientation": "h", "y": 1.15},
    )
    figure_text.plotly_chart(
        fig, width="stretch", config={"displayModeBar": False}, key="rf.erf_pair"
    )


# --- the 1-D tree -------------------------------------------------------------------------------


def shared_tree_figure(
    layers: Sequence[Mapping],
    length: int,
    tree: Sequence[TreeLevel],
    geometry: Sequence[tuple[float, int]],
    cell: int,
) -> go.Figure:
    """:func:`tree_figure` of the tree of ``layers`` on a ``length``-pixel input (``tree`` and
    ``geometry`` follow from them), built once per server for each exact stack and cell."""
    key = cache_key(tuple(as_layer(layer) for layer in layers), length, cell)
    return _tree_figure(key, tree, geometry, cell)


@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def _tree_figure(
    key: str, _tree: Sequence[TreeLevel], _geometry: Sequence[tuple[float, int]], _cell: int
) -> go.Figure:
    return tree_figure(_tree, _geometry, len(_tree) - 1, _cell)


def tree_figure(
    tree: Sequence[TreeLevel], geometry: Sequence[tuple[float, int]], level: int, cell: int
) -> go.Figure:
    """Cells of every level (input at the bottom) with the edges the chosen cell depends on.

    ``geometry`` holds each level's ``(start, jump)``: a cell sits at its field's centre in
    input coordinates (padding cells one jump past the ends), so the tree funnels like the maths.
    """
    deps = tree_dependencies(tree, level, cell)

    def x_of(lv: int, c: int) -> float:
        start, jump = geometry[lv]
        return start + c * jump

    fig = go.Figure()
    for highlighted in (False, True):
        xs: list = []
        ys: list = []
        for lv in range(1, level + 1):
            for here, there in tree[lv].edges:
                if (here in deps[lv] and there in deps[lv - 1]) == highlighted:
                    xs += [x_of(lv, here), x_of(lv - 1, there), None]
                    ys += [lv, lv - 1, None]
        fig.add_scatter(
            x=xs, y=ys, mode="lines", hoverinfo="skip",
            line={"color": FIELD_BLUE if highlighted else "#cbd5e1",
                  "width": 2.5 if highlighted else 1},
            name="feeds the chosen cell" if highlighted else "connection",
        )  # fmt: skip
    legend_pad = False
    for lv in range(level + 1):
        size = tree[lv].size
        groups = (
            ([c for c in range(size) if c not in deps[lv]], "#94a3b8", "cell"),
            ([c for c in range(size) if c in deps[lv]], FIELD_BLUE, "in the field"),
        )
        for cells, colour, name in groups:
            fig.add_scatter(
                x=[x_of(lv, c) for c in cells], y=[lv] * len(cells), mode="markers",
                marker={"size": 9, "color": colour}, name=name, showlegend=lv == 0,
                legendgroup=name, text=cells,
                hovertemplate=f"level {lv}, cell %{{text}}<extra></extra>",
            )  # fmt: skip
        if lv < level:
            pads = sorted({t for _, t in tree[lv + 1].edges if not 0 <= t < size})
            if pads:
                fig.add_scatter(
                    x=[x_of(lv, c) for c in pads], y=[lv] * len(pads), mode="markers",
                    name="padding (zero)", showlegend=not legend_pad, legendgroup="pad",
                    marker={"size": 9, "symbol": "square-open", "line": {"width": 2},
                            "color": [PAD_ORANGE if c in deps[lv] else "#94a3b8" for c in pads]},
                    hoverinfo="skip",
                )  # fmt: skip
                legend_pad = True
    fig.update_yaxes(
        tickvals=list(range(level + 1)),
        ticktext=[f"{lv}: {tree[lv].label}" for lv in range(level + 1)],
        showgrid=False,
        zeroline=False,
    )
    fig.update_xaxes(title="input coordinate", zeroline=False)
    fig.update_layout(
        height=160 + 60 * level,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "y": -0.2, "yanchor": "top"},
    )
    return fig

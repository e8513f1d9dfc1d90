"""Activation widgets and renderers: f and f′, vanishing gradients, feature maps, softmax."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

from cnnlab import activations as act
from cnnlab import images
from cnnlab import normalisation as norm
from cnnlab.viz import colourise, upscale
from ui import figure_text, picture
from ui.heap import FIGURES_PER_CACHE

MAP_SIDE = 128


def _picture(values: np.ndarray, factor: int = 1) -> tuple[np.ndarray, str]:
    rgb, scale = colourise(values)
    if scale.diverging:
        words = f"blue {scale.vmin:.3g}, white 0, red {scale.vmax:.3g}"
    else:
        words = f"dark {scale.vmin:.3g} to bright {scale.vmax:.3g}"
    return upscale(rgb, factor), words


def gray_array(image: Image.Image, side: int = MAP_SIDE) -> np.ndarray:
    """The picked image as a (H, W) float array in 0–1, longer side at most ``side``; a small
    or thin image is enlarged (pixels repeated) until the batch-norm crops fit."""
    small = image.convert("L")
    small.thumbnail((side, side))
    if min(small.size) < norm.CROP:
        small = images.working_image(image.convert("L"), side, norm.CROP)
    return np.asarray(small, dtype=np.float32) / 255.0


def enlarged_notice(image: Image.Image, side: int = MAP_SIDE) -> str | None:
    """What :func:`gray_array` did to a small or thin image, or ``None`` if nothing."""
    width, height = image.size
    if min(width, height) * side / max(width, height, side) >= norm.CROP:
        return None
    stretched = images.stretch_notice(width, height, side, norm.CROP, _WHY)
    if stretched:
        return stretched
    return (
        f"Your image is {width}×{height} pixels; it is enlarged to "
        f"{'×'.join(map(str, images.working_size(width, height, side, norm.CROP)))} "
        f"(each pixel a block) to leave room for {_WHY}."
    )


_WHY = f"the {norm.CROP}×{norm.CROP} batch-norm crops"


def edge_map(gray: np.ndarray) -> np.ndarray:
    """A signed feature map: the vertical-edge filter (a first conv layer's typical output)."""
    x = torch.from_numpy(gray)[None, None]
    return torch.nn.functional.conv2d(x, norm.FILTERS[:1, None])[0, 0].numpy()


# -- activations --------------------------------------------------------------------------------
def curves_figure(curves: list[act.Curve]) -> go.Figure:
    """f and f′ of each chosen activation side by side, vanishing stretches shaded on f′."""
    # Two x-axes laid out by hand: plotly's make_subplots costs ~35 ms per figure.
    fig = go.Figure()
    palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04"]
    for i, c in enumerate(curves):
        colour = palette[i % len(palette)]
        label = act.TITLES[c.name]
        line = {"color": colour}
        fig.add_scatter(x=c.x, y=c.f, name=label, legendgroup=label, line=line)
        fig.add_scatter(
            x=c.x,
            y=c.df,
            name=label,
            legendgroup=label,
            showlegend=False,
            line=line,
            xaxis="x2",
            yaxis="y2",
        )
    if len(curves) == 1:
        for lo, hi in curves[0].vanishing:
            fig.add_shape(
                type="rect",
                x0=lo,
                x1=hi,
                y0=0,
                y1=1,
                xref="x2",
                yref="y2 domain",
                fillcolor="#f97316",
                opacity=0.12,
                line_width=0,
            )
    fig.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": -0.2},
        xaxis={"domain": [0, 0.46]},
        xaxis2={"domain": [0.54, 1], "anchor": "y2"},
        yaxis2={"anchor": "x2"},
        annotations=[
            {
                "text": "f(x)",
                "x": 0.23,
                "y": 1.08,
                "xref": "paper",
                "yref": "paper",
                "showarrow": False,
            },
            {
                "text": "f′(x) (autograd)",
                "x": 0.77,
                "y": 1.08,
                "xref": "paper",
                "yref": "paper",
                "showarrow": False,
            },
        ],
    )
    return fig


def vanishing_text(c: act.Curve) -> str:
    """Where |f′| < 0.01, in words."""
    if not c.vanishing:
        return f"**{act.TITLES[c.name]}**: |f′| ≥ {act.VANISHING} everywhere on [−6, 6]."
    parts = ", ".join(f"[{lo:.2f}, {hi:.2f}]" for lo, hi in c.vanishing)
    return f"**{act.TITLES[c.name]}**: |f′| < {act.VANISHING} on {parts}."


# The curves, the figure and the pictures depend only on the settings (and the image): built
# once and shared by every session, so a rerun that changes nothing else computes nothing.
@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def curves_view(names: tuple[str, ...], slope: float) -> tuple[tuple[act.Curve, ...], go.Figure]:
    """Each activation's curve and their figure."""
    curves = tuple(act.curve(n, slope=slope) for n in names)
    return curves, curves_figure(list(curves))


@dataclass(frozen=True)
class MapView:
    """A feature map before and after an activation, as the page shows them."""

    before: bytes
    before_words: str
    after: bytes
    after_words: str
    result: act.MapStats
    zero_share_before: float
    range_before: tuple[float, float]


@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def map_view(digest: str, _gray: np.ndarray, name: str, slope: float) -> MapView:
    """The edge map of the image ``digest`` stands for, before and after the activation."""
    fmap = edge_map(_gray)
    result = act.apply_to_map(name, fmap, slope)
    before, before_words = _picture(fmap)
    after, after_words = _picture(result.output)
    return MapView(
        picture.array_bytes(before),
        before_words,
        picture.array_bytes(after),
        after_words,
        result,
        float((fmap == 0).mean()),
        (float(fmap.min()), float(fmap.max())),
    )


def activation_section(key: str, gray: np.ndarray, digest: str) -> None:
    """Pick activations, see f and f′, and one applied to a real feature map (``digest``
    identifies the image ``gray`` was made from)."""
    cols = st.columns([3, 1])
    names = cols[0].multiselect(
        "Activations",
        act.NAMES,
        default=["relu", "sigmoid", "gelu"],
        format_func=act.TITLES.get,
        key=f"{key}.names",
    )
    slope = cols[1].slider("a (Leaky ReLU, PReLU, ELU)", 0.0, 1.0, 0.1, 0.05, key=f"{key}.slope")
    if not names:
        st.info("Pick at least one activation.")
        return
    curves, figure = curves_view(tuple(names), slope)
    figure_text.plotly_chart(figure, width="stretch", key=f"{key}.chart")
    st.markdown("  \n".join(vanishing_text(c) for c in curves))
    st.caption(
        "Where f′ is (nearly) 0 no error signal passes backwards: saturated sigmoid and tanh "
        "units, and ReLU for every negative input (a unit that is always negative is 'dead'). "
        "Leaky ReLU, PReLU and ELU keep a slope a on the negative side."
    )
    st.subheader("On a real feature map")
    name = st.radio("Apply", names, format_func=act.TITLES.get, horizontal=True, key=f"{key}.apply")
    view = map_view(digest, gray, name, slope)
    result = view.result
    left, right = st.columns(2)
    picture.image(
        view.before,
        left,
        caption=f"Vertical-edge feature map ({view.before_words})",
        width="stretch",
        alt="Feature map before the activation",
    )
    picture.image(
        view.after,
        right,
        caption=f"After {act.TITLES[name]} ({view.after_words})",
        width="stretch",
        alt=f"Feature map after {act.TITLES[name]}",
    )
    m = st.columns(3)
    m[0].metric(
        "Exact zeros after",
        f"{result.zero_share:.1%}",
        help=f"before: {view.zero_share_before:.1%}",
    )
    m[1].metric("Range after", f"{result.lo:.3g} to {result.hi:.3g}")
    low, high = view.range_before
    m[2].metric("Range before", f"{low:.3g} to {high:.3g}")


@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def softmax_view(logits: tuple[float, ...], temperature: float) -> tuple[act.Softmax, go.Figure]:
    """Softmax of the scores at ``temperature``, and p₁ with its gradient as z₁ moves."""
    result = act.softmax(list(logits), temperature)
    fig = go.Figure()
    fig.add_scatter(x=result.z, y=result.p_first, name="p₁")
    fig.add_scatter(x=result.z, y=result.dp_first, name="∂p₁/∂z₁ (autograd)")
    fig.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis_title="z₁ (others fixed)",
        legend={"orientation": "h"},
    )
    return result, fig


def softmax_section(key: str) -> None:
    """Softmax with temperature on editable class scores."""
    cols = st.columns([3, 1])
    text = cols[0].text_input(
        "Class scores (logits), comma-separated", "2.0, 1.0, 0.1, -1.0", key=f"{key}.logits"
    )
    temperature = cols[1].slider("Temperature T", 0.1, 10.0, 1.0, 0.1, key=f"{key}.t")
    try:
        logits = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
        result, fig = softmax_view(tuple(logits), temperature)
    except ValueError as error:
        st.error(
            f"{error} Write numbers separated by commas, e.g. 2, 1, 0.1."
            if "could not convert" in str(error)
            else str(error),
            icon=":material/error:",
        )
        return
    frame = pd.DataFrame(
        {
            "score z": result.logits,
            "z / T": result.logits / temperature,
            "probability": np.round(result.probs, 4),
        },
        index=[f"class {i + 1}" for i in range(len(logits))],
    )
    left, right = st.columns([2, 3])
    left.dataframe(frame, width="stretch")
    figure_text.plotly_chart(fig, right, width="stretch", key=f"{key}.chart")
    st.caption(
        "softmax(z/T)ᵢ = e^(zᵢ/T) / Σⱼ e^(zⱼ/T). A low T sharpens towards the largest score "
        "(argmax), a high T flattens towards uniform; ∂p₁/∂z₁ = p₁(1 − p₁)/T vanishes once p₁ "
        "is near 0 or 1."
    )

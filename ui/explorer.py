"""The feature-map explorer's shared analysis cache and its renderers: preprocessing, the
prediction, every layer's tiled maps, one channel up close.

The analysis of one image (preprocessing, every layer's maps, the class scores) is computed once
per (network, image digest) and shared between sessions (``st.cache_resource``, bounded): the
network key of a learner's run contains their owner id, so only they can reach its entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
import torch
from PIL import Image

from cnnlab.explorer import (
    Explorable,
    LayerView,
    Preprocessed,
    bars_png,
    colour_map,
    layer_views,
    maps_npz,
    png_bytes,
    preprocess,
    producing_kernel,
    softmax,
    tile_maps,
    top5,
)
from cnnlab.viz import ColourScale, readable_aspect
from cnnlab.wording import plural
from ui import picture

SHOWN_INPUT_SIDE = 224  # the enlarged input and channel are drawn at this width


@dataclass(frozen=True)
class Analysis:
    """What the page shows for one (network, image): read-only, shared between sessions."""

    prep: Preprocessed
    views: tuple[LayerView, ...]
    scores: torch.Tensor | None  # (classes,) logits


# Bounded: one ResNet-18 analysis holds ~20 MB of maps, so at most 8 are kept, for an hour.
@st.cache_resource(show_spinner=False, max_entries=8, ttl=3600)
def analyse(model_key: str, digest: str, _target: Explorable, _image: Image.Image) -> Analysis:
    """Preprocess, run every layer and score, once per (network, image digest)."""
    prep = preprocess(_image, _target)
    views = tuple(layer_views(_target.model, prep.x))
    scores = None
    if _target.has_classifier:
        with torch.no_grad():
            scores = _target.model(prep.x)[0]
    return Analysis(prep, views, scores)


@st.cache_resource(show_spinner=False, max_entries=128)
def _tile(
    model_key: str, digest: str, layer: str, _view: LayerView, _labels: tuple[str, ...] | None
) -> tuple[bytes, ColourScale]:
    sheet, scale = tile_maps(_view.maps, _labels)
    return png_bytes(sheet), scale


@st.cache_resource(show_spinner=False, max_entries=32)
def _npz(model_key: str, digest: str, layer: str, _view: LayerView) -> bytes:
    return maps_npz(layer, _view.maps)  # compressing on every rerun would cost more than the page


def _enlarged(array: np.ndarray, side: int = SHOWN_INPUT_SIDE) -> bytes:
    """An array drawn ``side`` pixels wide with nearest-neighbour pixels, as PNG bytes."""
    image = Image.fromarray(array)
    height = max(1, round(side * image.height / image.width))
    return png_bytes(np.asarray(image.resize((side, height), Image.Resampling.NEAREST)))


# Per (network, image), like the analysis: the pictures are encoded once, not on every rerun.
@st.cache_resource(show_spinner=False, max_entries=16, ttl=3600)
def _steps_shown(model_key: str, digest: str, _prep: Preprocessed) -> tuple[tuple[bytes, str], ...]:
    shown_steps = []
    for caption, step in _prep.steps:
        shown = step if max(step.size) >= 96 else _nearest(step, 112)
        # A strip would be drawn less than a pixel thick (Streamlit then fails to resize it).
        shown, stretch = readable_aspect(np.asarray(shown))
        if stretch > 1:
            caption += f"; drawn {stretch}× thicker across"
        shown_steps.append((picture.array_bytes(shown), caption))
    return tuple(shown_steps)


def show_preprocessing(prep: Preprocessed, target: Explorable, digest: str) -> None:
    """Every step from the image (``digest``) to the tensor, then its shape and normalisation."""
    columns = st.columns(max(4, len(prep.steps)))  # at most 6 steps (upload → centred digit)
    steps = _steps_shown(target.key, digest, prep)
    for column, (data, caption) in zip(columns, steps, strict=False):
        picture.image(data, column, caption=caption, width=150, alt=caption)
    _, c, h, w = prep.shape
    mean = ", ".join(f"{m:.3f}" for m in target.mean)
    std = ", ".join(f"{s:.3f}" for s in target.std)
    st.markdown(
        f"The network receives a tensor of shape **(1, {c}, {h}, {w})** (batch, channels, "
        f"height, width): each pixel scaled to 0…1, then normalised per channel as "
        f"(value − mean) / std with mean ({mean}) and std ({std}). Its values run from "
        f"{float(prep.x.min()):.2f} to {float(prep.x.max()):.2f}."
    )


def _nearest(picture: Image.Image, side: int) -> Image.Image:
    scale = max(1, side // max(picture.size))
    return picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)


# What ``st.bar_chart(frame, x="class", y="probability", horizontal=True, sort="-probability",
# height=340)`` draws, written out: bar_chart builds and validates an Altair chart on every run
# (~10 ms, most of the prediction panel's rerun); this is the Vega-Lite spec it sends
# (tests/test_page_explorer.py holds the two equal).
PROBABILITY_BARS = {
    "mark": {"type": "bar"},
    "encoding": {
        "tooltip": [
            {"field": "class", "type": "nominal"},
            {"field": "probability", "type": "quantitative"},
        ],
        "x": {
            "axis": {"grid": True}, "field": "probability", "scale": {},
            "title": "probability", "type": "quantitative",
        },
        "y": {
            "axis": {"grid": False}, "field": "class", "scale": {},
            "sort": {"field": "probability", "order": "descending"},
            "title": "class", "type": "ordinal",
        },
    },
    "height": 340,
    "params": [
        {"name": "param_1", "select": {"type": "interval", "encodings": ["x", "y"]},
         "bind": "scales"},
    ],
    "width": 0,
}  # fmt: skip


def show_prediction(scores: torch.Tensor, classes: tuple[str, ...]) -> None:
    """Class probabilities as bars, with a softmax temperature slider."""
    left, right = st.columns([2, 3], gap="large")
    temperature = left.slider(
        "Softmax temperature T",
        0.1,
        10.0,
        1.0,
        0.1,
        key="explorer.temperature",
        help="softmax(z / T): T > 1 flattens the probabilities, T < 1 sharpens them; the order "
        "of the classes never changes.",
    )
    probs = softmax(scores, temperature)
    order = torch.argsort(probs, descending=True)[:10]
    best = int(order[0])
    left.markdown(
        f"Prediction: **{classes[best]}** with probability **{float(probs[best]):.1%}** at "
        f"T = {temperature:g} (its score z = {float(scores[best]):.2f})."
    )
    ranked = ", ".join(f"{name} ({p:.1%})" for name, p in top5(scores, classes, temperature))
    left.markdown(f"Top 5: {ranked}.")
    left.caption(
        "Softmax turns the scores z into probabilities e^(z/T) / Σ e^(z/T). The temperature "
        "only rescales the scores: the ranking stays, the confidence changes."
    )
    frame = pd.DataFrame(
        {"class": [classes[int(i)] for i in order], "probability": probs[order].numpy()}
    )
    with right:
        st.vega_lite_chart(frame, PROBABILITY_BARS, height=340)
        st.caption("The ten most probable classes and their probabilities.")
        classes_shown, probs_shown = list(frame["class"]), list(frame["probability"])
        st.download_button(
            "Download as PNG",
            # Drawn when clicked: drawing it on every rerun cost more than the rest of the panel.
            lambda: bars_png(classes_shown, probs_shown,
                             f"Class probabilities at T = {temperature:g}"),
            file_name="probabilities.png",
            mime="image/png",
            key="explorer.probs_png",
            on_click="ignore",
        )  # fmt: skip


def layer_table(views: tuple[LayerView, ...]) -> None:
    """One row per layer: shape, statistics, the top channels for this image."""
    frame = pd.DataFrame(
        {
            "layer": [v.name for v in views],
            "kind": [v.kind for v in views],
            "shape (C × H × W)": ["×".join(map(str, v.shape)) for v in views],
            "mean": [round(v.mean, 4) for v in views],
            "zeros": [f"{v.zero_share:.0%}" for v in views],
            "min … max": [f"{v.minimum:.3g} … {v.maximum:.3g}" for v in views],
            "top channels": [", ".join(map(str, v.top_channels)) for v in views],
        }
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    st.caption(
        "Zeros: the share of values that are exactly 0 (after a ReLU, the neurons that are off "
        "for this image). Top channels: highest mean activation for this image."
    )


def _layer_caption(view: LayerView, scale: ColourScale) -> str:
    k, h, w = view.shape
    colours = (
        f"blue (−{scale.vmax:.3g}) – white (0) – red (+{scale.vmax:.3g})"
        if scale.diverging
        else f"viridis, 0 (dark) to {scale.vmax:.3g} (yellow)"
    )
    return f"Layer {view.name} ({view.kind}): {k} channels of {h}×{w}; {colours}"


def show_all_layers(target: Explorable, digest: str, views: tuple[LayerView, ...]) -> None:
    """Every layer as one tiled image, three layers to a row."""
    for start in range(0, len(views), 3):
        for column, view in zip(st.columns(3), views[start : start + 3], strict=False):
            data, scale = _tile(target.key, digest, view.name, view, None)
            caption = _layer_caption(view, scale)
            picture.image(data, column, caption=caption, alt=caption)


def show_layer(target: Explorable, digest: str, view: LayerView) -> None:
    """A layer's maps as one tiled image with its colour scale, and a PNG / .npz export."""
    labels = target.channel_labels.get(view.name)
    data, scale = _tile(target.key, digest, view.name, view, labels)
    caption = _layer_caption(view, scale) + ". Channels are numbered."
    picture.image(data, caption=caption, alt=caption)
    left, right = st.columns(2)
    left.download_button(
        "Download these maps as PNG",
        data,
        file_name=f"layer-{view.name}.png",
        mime="image/png",
        key="explorer.maps.png",
        on_click="ignore",
    )
    right.download_button(
        "Download the values as .npz",
        _npz(target.key, digest, view.name, view),
        file_name=f"layer-{view.name}.npz",
        mime="application/octet-stream",
        key="explorer.maps.npz",
        on_click="ignore",
    )


@dataclass(frozen=True)
class ChannelView:
    """One channel as the page shows it: the input and the channel enlarged (PNG), the kernel."""

    input_png: bytes
    channel_png: bytes
    caption: str
    kernel_png: bytes | None
    kernel_caption: str


# Per (network, image, layer, channel), shared like the analysis: nothing is drawn again when
# a rerun does not change them.
@st.cache_resource(show_spinner=False, max_entries=64, ttl=3600)
def _channel_view(
    model_key: str, digest: str, layer: str, channel: int, _target: Explorable, _analysis: Analysis
) -> ChannelView:
    view = next(v for v in _analysis.views if v.name == layer)
    scale = ColourScale(
        *(
            (-max(-view.minimum, view.maximum), max(-view.minimum, view.maximum), True)
            if view.minimum < 0
            else (0.0, view.maximum, False)
        )
    )
    pixels = np.asarray(_analysis.prep.pixels.convert("RGB"))
    values = view.maps[channel]
    caption = (
        f"Channel {channel} of layer {view.name}: mean {float(values.mean()):.3g}, "
        f"max {float(values.max()):.3g} (layer's colour scale)"
    )
    channel_png = _enlarged(colour_map(values, scale))
    found = producing_kernel(_target.model, view.name, channel)
    if found is None:
        return ChannelView(_enlarged(pixels), channel_png, caption, None, "")
    conv, weights = found
    sheet, kscale = tile_maps(weights)
    kernel_caption = (
        f"Its kernel in layer {conv}: {plural(weights.shape[0], 'input channel')} of "
        f"{weights.shape[1]}×{weights.shape[2]} weights, "
        f"{kscale.vmin:.2g} … {kscale.vmax:.2g}"
    )
    return ChannelView(
        _enlarged(pixels), channel_png, caption, _enlarged(sheet, 160), kernel_caption
    )


def show_channel(
    target: Explorable, analysis: Analysis, view: LayerView, channel: int, digest: str
) -> None:
    """One channel enlarged beside the input (``digest``), with the kernels that produced it."""
    shown = _channel_view(target.key, digest, view.name, channel, target, analysis)
    cols = st.columns(3)
    with cols[0]:
        picture.image(
            shown.input_png, caption="The network's input", width=SHOWN_INPUT_SIDE, alt="The input"
        )
        st.download_button(
            "Download the input as PNG",
            shown.input_png,
            file_name="input.png",
            mime="image/png",
            key="explorer.input_png",
            on_click="ignore",
        )
    with cols[1]:
        picture.image(
            shown.channel_png, caption=shown.caption, width=SHOWN_INPUT_SIDE, alt=shown.caption
        )
        st.download_button(
            "Download this channel as PNG",
            shown.channel_png,
            file_name=f"layer-{view.name}-channel-{channel}.png",
            mime="image/png",
            key="explorer.channel_png",
            on_click="ignore",
        )
    with cols[2]:
        if shown.kernel_png is None:
            st.caption("No single convolution kernel produced this channel.")
        else:
            caption = shown.kernel_caption
            picture.image(shown.kernel_png, caption=caption, width=160, alt=caption)

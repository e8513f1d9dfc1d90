"""Convolution variants: standard, 1×1, depthwise, separable, grouped, dilated, transposed; 1-D
and 3-D convolution on real signals and volumes."""

from __future__ import annotations

import streamlit as st

from cnnlab import conv_variants as cv
from ui import conv_variants as ui
from ui import url_state
from ui.image_source import image_picker
from ui.navigation import ensure_app_navigation

ensure_app_navigation()
st.title("Convolution variants")
st.markdown(
    "Modern CNNs rarely use only the standard convolution. MobileNet is built from "
    "**depthwise-separable** convolutions, ResNeXt from **grouped** ones, segmentation "
    "networks from **dilated** ones and decoders from **transposed** ones. Here every variant "
    "is a real PyTorch layer: what it connects, what it costs, and what it does to an image."
)

st.header("1. What each variant costs")
st.markdown("Your layer's sizes (the defaults: a 3×3 layer with 256 → 256 channels on 56×56):")


@url_state.fragment
def _costs() -> None:
    s = ui.sizes("variants")
    try:
        ui.cost_table(ui.costs(s))
    except ValueError as error:
        st.error(str(error), icon=":material/error:")
        return
    st.subheader("Which channels connect, which pixels a filter touches")
    variant = st.radio(
        "Variant", cv.VARIANTS, format_func=cv.TITLES.get, horizontal=True, key="variants.pick"
    )
    ui.connectivity_view(variant, s)


_costs()

st.header("2. On a real image")
st.markdown(
    "Each variant with **hand-set weights** (edge detectors, colour mixing, a bilinear "
    "upsampling kernel) on a 3-channel picture, so you can see what its structure allows."
)
source = image_picker("variants.image", default_sample="cat", allow_draw=False)


@url_state.fragment
def _image() -> None:
    cols = st.columns([3, 1])
    variant = cols[0].radio(
        "Variant on the image",
        cv.VARIANTS,
        format_func=cv.TITLES.get,
        horizontal=True,
        key="variants.image_variant",
    )
    dilation = cols[1].slider("Dilation (dilated)", 1, 8, 3, key="variants.image_dilation")
    ui.image_view(variant, source.image, source.digest, dilation)


_image()

st.header("3. 1-D convolution: signals")
st.markdown(
    "The same sliding window in one dimension, as used on audio, sensor data and text: "
    "move the kernel along the signal and watch the output being written."
)
ui.signal_view("variants.1d")

st.header("4. 3-D convolution: volumes and video")
st.markdown(
    "A 3-D kernel also slides through **time** (or depth in a medical scan): here a stack of "
    "frames of a moving square. A kernel that subtracts consecutive frames answers only where "
    "something moved."
)
url_state.fragment(ui.volume_view)("variants.3d")

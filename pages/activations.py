"""Activations & normalisation: f and f′, softmax temperature, batch norm, dropout, and batch norm
switched on and off in two real training runs."""

from __future__ import annotations

import streamlit as st

from ui import activations as ui
from ui import normalisation as norm_ui
from ui import url_state
from ui.image_source import image_picker
from ui.navigation import ensure_app_navigation
from ui.owner import owner_id
from ui.training import scheduler, store_or_explain

ensure_app_navigation()
st.title("Activations & normalisation")
st.markdown(
    "Between the convolutions sit the layers that make a CNN trainable: an **activation** "
    "bends each number (without it, stacked convolutions collapse into one linear map), "
    "**batch norm** keeps every channel's scale in check, and **dropout** stops units from "
    "relying on each other. Every curve and number here comes from PyTorch's own modules; "
    "derivatives come from autograd."
)
source = image_picker("norm.image", default_sample="camera", allow_draw=False)
gray = ui.gray_array(source.image)
if notice := ui.enlarged_notice(source.image):
    st.info(notice, icon=":material/info:")

st.header("1. Activation functions")
url_state.fragment(ui.activation_section)("norm.act", gray, source.digest)

st.header("2. Softmax and temperature")
url_state.fragment(ui.softmax_section)("norm.softmax")

st.header("3. Batch norm made visible")
st.markdown(
    "A batch of feature maps (random crops of your image, each with its own brightness and "
    "contrast, through four fixed 3×3 filters) goes through `nn.BatchNorm2d(4)`: per channel, "
    "y = γ·(x − mean)/√(variance + ε) + β."
)
url_state.fragment(norm_ui.batch_norm_section)("norm.bn", gray, source.digest)

st.header("4. Dropout")
url_state.fragment(norm_ui.dropout_section)("norm.dropout", gray)

st.header("5. Experiment: the same network with and without batch norm")
st.markdown(
    "Two real training runs through the same worker queue as **Train a CNN** (they appear in "
    "your runs history there too): identical networks, data, seed and settings, except for a "
    "batch norm after each convolution. Try a small and a large learning rate."
)
runs = store_or_explain()
if runs is not None:
    norm_ui.experiment_section(scheduler(), runs, owner_id())

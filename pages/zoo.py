"""Architecture zoo: every number of LeNet-5 … MobileNet V2, layer by layer, and as PyTorch code."""

from __future__ import annotations

import streamlit as st

from cnnlab.zoo import PUBLISHED
from ui import figure_text, url_state
from ui import zoo as ui
from ui.navigation import ensure_app_navigation

ensure_app_navigation()
st.title("Architecture zoo")
st.markdown(
    "From LeNet-5 (1998) to MobileNet V2 (2018): pick a famous network and read **every "
    "number** of it, layer by layer: output shape, parameters, multiply-adds, memory and "
    "receptive field. Each network is built in PyTorch from the same definitions you can "
    "download below, traced on PyTorch's *meta* device (shapes without weights), and the "
    "totals are checked by the test suite against the published figures."
)

name, side = ui.pick_architecture("zoo")
try:
    result = ui.analysis(name, side)
except ValueError as error:
    st.error(str(error), icon=":material/error:")
    st.stop()

st.header("1. Totals")
ui.totals(result, name)

st.header("2. The layer sequence")
figure_text.graphviz_chart(ui.diagram_dot(name, side), width="content")
st.caption(
    "Batch norm and activations are folded into the layer before them; residual, inverted "
    "residual and depthwise-separable blocks are drawn as one box (coloured), with identical "
    "consecutive boxes merged (×n). Edges carry the shape (channels×height×width) between them."
)

st.header("3. Layer by layer")
st.dataframe(ui.layer_frame(result), hide_index=True, width="stretch", height=420)
st.caption(
    "Receptive field: height of the input window one output of the layer can see, along the "
    "main path (shortcut projections see less); *whole image* after global pooling or flatten."
)

st.header("4. MLP versus CNN")
url_state.fragment(ui.dense_vs_conv_section)("zoo.mlp")

st.header("5. Build it in PyTorch")
st.markdown(
    f"The complete definition of **{PUBLISHED[name].title}**, runnable on its own with "
    "nothing but PyTorch: it is the code this page counts (the tests run it and compare its "
    "parameters and its output with the app's model)."
)
classes = 10 if name in ("lenet5", "textbook") else 1000
source = ui.code(name, classes)
with st.expander(f"{name}.py ({source.count(chr(10))} lines)", expanded=False):
    st.code(source, language="python")
st.download_button(
    f"Download {name}.py",
    source,
    file_name=f"{name}.py",
    mime="text/x-python",
    key="zoo.download",
    icon=":material/download:",
)
st.subheader("Your own stack")
st.markdown("Start from a preset and edit the layers: the summary and the code follow every edit.")
url_state.fragment(ui.stack_section)("zoo.stack")

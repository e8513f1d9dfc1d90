"""Stride, padding & dilation: predict a layer's output size, see every window, take the quiz."""

from __future__ import annotations

import streamlit as st

from ui import arithmetic as ui
from ui import url_state
from ui.navigation import ensure_app_navigation

ensure_app_navigation()

st.title("Stride, padding & dilation")
st.markdown(
    "Why does a **28×28** input with a **5×5** kernel, stride **2** and padding **1** give "
    "**13×13**? Pad the input, count how many times the (dilated) kernel fits as it jumps by the "
    "stride — that is the whole formula. Every size here is checked by running PyTorch."
)
calculator, chain, quiz = st.tabs(["Calculator", "Chain of layers", "Quiz"], key="arith.tab")


# Each tab is a fragment: its widgets change nothing in the other two, so a change reruns only
# its own tab on the server (the tabs all render on every full run; none is lazy).
@url_state.fragment
def calculator_tab() -> None:
    """The operation's settings, its formula checked by PyTorch, and the sliding window."""
    controls, results = st.columns([1, 2], gap="large")
    with controls:
        config = ui.calculator_controls()
    with results:
        try:
            layer = config.analyse()
        except ValueError as error:
            st.error(str(error), icon=":material/error:")
            layer = None
        if layer is not None:
            ui.render_result(config, layer)
    if layer is not None:
        st.subheader("Watch the window slide")
        ui.render_picture(layer)


@url_state.fragment
def chain_tab() -> None:
    """The layer-chain calculator."""
    st.markdown(
        "Stack layers and follow the shape (channels × height × width). The default is the "
        "textbook network: 32×32×3 → conv 3×3, 16, same → pool 2 → conv 3×3, 32, same → pool 2 "
        "→ flatten → 128 → 10 classes. Edit, add or delete rows."
    )
    ui.render_chain()


with calculator:
    calculator_tab()
with chain:
    chain_tab()
with quiz:
    url_state.fragment(ui.render_quiz)()

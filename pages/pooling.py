"""Pooling: max, average, Lp and global pooling side by side, and what invariance really means."""

from __future__ import annotations

import streamlit as st

from cnnlab.invariance import DIRECTIONS, SHIFT_MODES
from cnnlab.pooling import PoolSpec, compare_heads, reference_pool2d
from ui import pooling as ui
from ui import url_state
from ui.image_source import ImageSource, image_picker
from ui.navigation import ensure_app_navigation

ensure_app_navigation()
st.title("Pooling")
st.markdown(
    "A pooling layer slides a **window** over each feature map and replaces every window by "
    "one number — its maximum, its average or its norm. It shrinks the maps (fewer numbers "
    "for the next layer), it has **no weights to learn**, and it makes the output less "
    "sensitive to *small* shifts of the input. How much less is measured in section 3."
)
spec = ui.pool_settings()


# Sections 1, 2, 3 and the head comparison are fragments: their own widgets change nothing
# elsewhere, so a change reruns only that section. The settings above and the image picker
# feed several sections and rerun the page.
@url_state.fragment
def window_by_window(spec: PoolSpec) -> None:
    """An editable grid pooled window by window, checked against PyTorch."""
    grid = ui.grid_input()
    try:
        trace = reference_pool2d(grid, spec)
    except ValueError as error:
        st.error(str(error), icon=":material/error:")
    else:
        ui.step_through(trace)
        st.caption(ui.torch_agreement(trace))


@url_state.fragment
def every_type(source: ImageSource, spec: PoolSpec) -> None:
    """Every pooling type on the learner's image at a chosen working size."""
    side = st.select_slider(
        "Working size (longer side, pixels)",
        ui.WORK_SIDES,
        64,
        key="pool.side",
        help="Small on purpose: a 2×2 window on a 1000-pixel photo changes nothing you could see.",
    )
    st.markdown(
        f"Same settings for every type (dilation is max-only; the others use 1). Pooling works "
        f"on each colour channel separately. **{source.name}** at {side} px:"
    )
    notice = ui.stretch_notice(source, side)
    if notice:
        st.info(notice, icon=":material/info:")
    ui.pooled_row(ui.pooled_pictures(source, side, spec))


@url_state.fragment
def invariance(source: ImageSource, spec: PoolSpec) -> None:
    """The measured shift experiment for the chosen direction, shift mode and stage."""
    cols = st.columns(4)
    direction = cols[0].radio("Shift", list(DIRECTIONS), horizontal=True, key="pool.shift_dir")
    mode = cols[1].radio(
        "How to shift",
        SHIFT_MODES,
        format_func=ui.SHIFT_MODE_LABELS.get,
        key="pool.shift_mode",
        help=ui.SHIFT_MODE_HELP,
    )
    max_shift = cols[2].slider("Largest shift k", 1, 12, 6, key="pool.max_shift")
    stage = cols[3].radio(
        "Pool what", ("conv output", "image"), horizontal=True, key="pool.inv_stage"
    )
    notice = ui.stretch_notice(source, ui.INVARIANCE_SIDE, ui.INVARIANCE_MIN_SIDE)
    if notice:
        st.caption(notice)
    try:
        result = ui.image_invariance(source, ui.INVARIANCE_SIDE, spec, max_shift, direction, mode)
    except ValueError as error:
        st.error(str(error), icon=":material/error:")
    else:
        ui.invariance_section(result, stage, spec)


@st.fragment
def heads() -> None:
    """Flatten + fully connected versus global average pooling, in parameters."""
    cols = st.columns(4)
    channels = cols[0].number_input("Channels C", 1, 4096, 512, key="pool.head_c")
    height = cols[1].number_input("Height H", 1, 64, 7, key="pool.head_h")
    width = cols[2].number_input("Width W", 1, 64, 7, key="pool.head_w")
    classes = cols[3].number_input("Classes", 1, 100_000, 1000, key="pool.head_classes")
    ui.head_metrics(compare_heads(int(channels), int(height), int(width), int(classes)))


st.header("1. Window by window")
window_by_window(spec)

st.header("2. Every pooling type on an image")
source = image_picker("pool.image")
every_type(source, spec)
st.caption(
    "Every pooling layer has **0 learnable parameters**, counted from the PyTorch module "
    "itself (`sum(p.numel() for p in module.parameters())`): it only selects and combines "
    "numbers, in a way fixed by its settings."
)

st.header("3. Does pooling make a CNN translation invariant?")
st.markdown(
    "Shift the image by *k* pixels and compare each stage's output **at the same positions** "
    "before and after. Stages: a convolution (four fixed 3×3 edge filters, then ReLU), and "
    "each pooling type applied to the convolution's output as in a CNN (or to the image)."
)
invariance(source, spec)

st.header("4. Global average pooling: from feature maps to a classifier")
ui.gap_bridge(source, ui.INVARIANCE_SIDE)
st.markdown(
    "A real network ends the same way, with hundreds of channels. Compare the two usual "
    "classifier heads on a C×H×W feature map:"
)
heads()
st.caption(
    "512×7×7 → 1000 classes is the last block of VGG-16 on ImageNet; ResNet-50 ends with "
    "2048×7×7 and global average pooling. The flatten head is also tied to one input size, "
    "while global average pooling accepts any H×W. Counts come from real `nn.Linear` modules "
    "(built on PyTorch's meta device, so 25 million weights cost no memory)."
)

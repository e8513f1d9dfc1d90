"""Skip connections: gradients that vanish in deep plain nets and flow through residual ones."""

from __future__ import annotations

import streamlit as st

from cnnlab.blocks import KIND_LABELS, KINDS
from cnnlab.experiments import RESIDUAL_DEPTH
from cnnlab.gradient_flow import MAX_DEPTH
from ui import experiments, figure_text, url_state
from ui import residual as ui
from ui.navigation import ensure_app_navigation

ensure_app_navigation()
st.title("Skip connections and gradient flow")
experiments.shared_view(("residual",), "res.exp", None)
st.markdown(
    "Stacking more layers should never hurt — a deeper net could copy a shallower one and "
    "make the extra layers the identity. Yet plain deep nets train *worse*. Below, four "
    "networks with the **same number of 3×3 convolutions**, the same width and the same "
    "head are measured on the same batch of images: plain or residual, with or without batch "
    "norm. The gradient each layer's weights receive is computed by autograd, not asserted."
)


@url_state.fragment
def gradient_lab() -> None:
    """Depth, width, steps, seed → the four networks' gradient norms (cached per settings)."""
    st.header("1. Gradient norm, layer by layer")
    cols = st.columns(4)
    depth = cols[0].slider("Conv layers", 4, MAX_DEPTH, 20, 2, key="res.depth")
    width = cols[1].select_slider("Channels", (4, 8, 16), 8, key="res.width")
    steps = cols[2].slider("SGD steps", 0, 40, 10, key="res.steps")
    seed = cols[3].number_input("Seed", 0, 9999, 0, key="res.seed")
    results = ui.flows(depth, width, steps, int(seed))
    when = st.radio(
        "Gradients", ("at initialisation", f"after {steps} steps"), horizontal=True,
        key="res.when",
    )  # fmt: skip
    after = when != "at initialisation"
    figure_text.plotly_chart(
        ui.norms_figure(depth, width, steps, int(seed), after), key="res.norms"
    )
    plain, residual = results["plain"], results["residual"]
    st.markdown(
        f"At initialisation the first conv layer of the **plain** net gets "
        f"**{plain.first_to_last:.1e}** times the gradient of its last one; with skip "
        f"connections, **{residual.first_to_last:.1e}**. A gradient that small means the early "
        "layers — the ones that see the pixels — barely learn. Batch norm rescales every "
        "layer's activations and rescues much of the plain net too; skips *and* batch norm are "
        "how ResNets of 50–150 layers train."
    )
    st.dataframe(ui.flow_table(results), hide_index=True)
    st.caption(
        f"Each network: {depth} 3×3 convolutions of {width} channels (the first with stride "
        f"2), global average pooling and a linear layer to the 10 shape classes; one batch of "
        f"{ui.BATCH} built-in shapes; PyTorch's default initialisation from seed {seed}; SGD "
        "with learning rate 0.05 and momentum 0.9 for the steps. The table is the chart's "
        "text alternative."
    )
    if steps:
        figure_text.plotly_chart(ui.losses_figure(depth, width, steps, int(seed)), key="res.losses")
        st.caption(
            f"Training loss over the {steps} steps on that batch: the net whose early layers "
            "get no gradient barely moves."
        )


gradient_lab()


@url_state.fragment
def block_lab() -> None:
    """A block type and its sizes → diagram, formula and parameter table."""
    st.header("2. The blocks, taken apart")
    kind = st.radio("Block", KINDS, format_func=KIND_LABELS.get, horizontal=True, key="res.block")
    cols = st.columns(5)
    c_in = cols[0].number_input("Input channels", 1, 2048, 64, key="res.c_in")
    dense = kind == "dense"
    # A dense block's growth rate and layer count are other quantities: other widgets.
    if dense:
        c_out = cols[1].number_input("Growth rate k", 1, 512, 32, key="res.growth")
        expand = cols[3].number_input("Layers", 1, 12, 4, key="res.layers")
    else:
        c_out = cols[1].number_input("Output channels", 1, 2048, 128, key="res.c_out")
        expand = cols[3].number_input(
            "Expansion t", 1, 12, 6, key="res.expand", disabled=kind != "inverted"
        )
    stride = cols[2].radio("Stride", (1, 2), horizontal=True, key="res.stride", disabled=dense)
    side = cols[4].number_input("Input size (pixels)", 1, 224, 56, key="res.side")
    try:
        anatomy, dot = ui.block(
            kind, int(c_in), int(c_out), 1 if dense else int(stride), int(expand), int(side)
        )
    except ValueError as error:
        st.error(str(error), icon=":material/error:")
        return
    # Without a skip (an inverted residual that changes shape) the block is just F.
    st.latex(ui.FORMULAS[kind] if anatomy.combine != "none" else "y = F(x)")
    left, right = st.columns([2, 3])
    with left:
        figure_text.graphviz_chart(dot)
    with right:
        st.markdown(ui.NOTES[kind])
        st.dataframe(ui.steps_table(anatomy), hide_index=True)
        st.caption(
            "Read off the real PyTorch module as it runs on a zero input: every parameter is "
            "either on the main path or on the skip (batch norm counts its γ and β)."
        )


block_lab()


st.header("3. Train them side by side")
st.markdown(
    "Gradients at the start are a prediction; training is the test. The four networks of "
    f"section 1 ({RESIDUAL_DEPTH} conv layers of 8 channels each) train one after another in "
    "the training queue, on the same images, from the same seed, with the same SGD + "
    "momentum. Expect the plain net without batch norm to stay near chance (10 %) while the "
    "nets with skips learn; the table below the chart gives what your run measured (two "
    "quick epochs are noisy: try another seed, or switch *Quick* off)."
)
experiments.launcher("res.exp", ("residual",))

"""Receptive fields: build a stack, read its arithmetic, see a neuron's field on your image,
measure the effective field, and follow the 1-D dependency tree."""

from __future__ import annotations

import streamlit as st

from cnnlab.receptive_field import (
    StackError,
    analyse_stack,
    as_layer,
    field_tree,
    receptive_fields,
)
from ui import figure_text, url_state
from ui import receptive_field as rf
from ui.image_source import ImageSource, image_picker
from ui.navigation import ensure_app_navigation
from ui.owner import owner_id

ensure_app_navigation()
st.title("Receptive fields")
st.markdown(
    "A neuron deep in a CNN looks at a **window of the input image**: its *receptive field*. "
    "Every conv or pool layer widens it by (kernel − 1) × the *jump* (the product of all the "
    "strides so far). Build a stack, click a neuron, and see exactly which pixels it can see, "
    "and which of them really matter."
)

owner = owner_id()
trained = rf.trained_presets(owner)

st.header("1 · The layer stack")
stack_col, image_col = st.columns([3, 2], gap="large")
with stack_col:
    rows, size = rf.stack_editor(trained.presets)
    if trained.unusable:
        st.caption("Trained networks this page cannot draw: " + "; ".join(trained.unusable))
with image_col:
    source = image_picker("rf.image")
layers = rf.rows_to_layers(rows)

error: StackError | None = None
try:
    fields = analyse_stack(layers, size)
except StackError as exc:
    error = exc
    fields = analyse_stack(layers[: exc.index], size)

st.header("2 · Layer by layer")
if error is not None:
    st.error(f"Row {error.index + 1} cannot run. {error}", icon=":material/error:")
rf.layer_table(fields, rows, None if error is None else error.index, size)
with st.expander("The formulas (Araujo et al., Distill 2019)"):
    st.markdown(
        "With input pixel *i* centred at coordinate *i*, and for a layer with kernel *k*, "
        "stride *s*, padding *p*, dilation *d* (effective kernel k′ = d·(k − 1) + 1):\n\n"
        "- output size = ⌊(n + 2p − k′) / s⌋ + 1\n"
        "- jump = jump_prev · s\n"
        "- RF size = RF_prev + (k′ − 1) · jump_prev\n"
        "- start = start_prev + ((k′ − 1)/2 − p) · jump_prev\n\n"
        "Output *m* sees input coordinates start + m·jump ± (RF − 1)/2; coordinates below 0 or "
        "past the last pixel are padding. ReLU, batch norm and dropout change nothing. Each "
        "number is checked in the tests against the gradients of real PyTorch networks."
    )
if not fields:
    st.info("Add a conv or pool row to the stack to see a receptive field.")
    st.stop()

st.header("3 · Pick a neuron")
index = rf.pick_layer(fields)


# A fragment: moving to another neuron (sliders or a click on the chart) redraws only this
# section; the layer above also sets what sections 4 and 5 show, so it reruns the page.
@url_state.fragment
def neuron_view(source: ImageSource, fields: list, index: int, size: int) -> None:
    """The neuron sliders, its field on the image and the field growing layer by layer."""
    neuron = rf.pick_neuron(fields[index])
    overlay, growth = rf.field_figures(source, size, fields, index, neuron)
    rf.show_field(overlay, fields, index, neuron)
    st.caption(
        f"{source.name}, {rf.square_text(source.image, size)}. "
        "Dots are the neurons of this layer, placed at the centre of their fields."
    )
    st.subheader("The field growing layer by layer")
    figure_text.plotly_chart(
        growth, width="stretch", config={"displayModeBar": False}, key="rf.growth"
    )
    st.caption(
        "Each square is the field of the neuron on the chosen neuron's centre line after that "
        "layer: each layer adds (kernel − 1) × jump pixels, so strides early on make it grow "
        "fast."
    )


neuron_view(source, fields, index, size)

st.header("4 · The effective receptive field")
samples = rf.erf_samples(fields, index)
st.markdown(
    "Not all pixels of the field matter equally: a centre pixel reaches the neuron through "
    "many paths, a border pixel through only a few, so its influence (the gradient) falls off "
    "like a Gaussian. Luo et al. (2016) measure it as the mean |∂ neuron / ∂ pixel| over "
    f"random inputs: here for the centre neuron of the chosen layer, averaged over "
    f"{rf.ERF_NETWORKS} randomly initialised networks with this geometry (ReLU after every "
    f"conv, ≤ {rf.ERF_CHANNELS} channels) × {samples} random images each."
)
signature = (tuple(as_layer(layer) for layer in layers[: index + 1]), size, index, samples)
cheap = rf.erf_cost(fields, index) <= 64 * 64 * 8
if cheap or st.button("Measure the effective field", key="rf.erf", icon=":material/science:"):
    st.session_state["rf.erf_for"] = signature
erf = None
if st.session_state.get("rf.erf_for") == signature:
    with st.spinner("Back-propagating from the centre neuron…"):
        try:
            erf = rf.cached_erf(*signature)
        except ValueError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            rf.show_erf(erf, size)
            st.caption(
                "The 95 % share counts the fewest pixels, largest gradients first, that hold 95 % "
                "of the total gradient, over the theoretical field's area inside the image. "
                "ResNet presets leave out the shortcuts, which pull the effective field even "
                "closer to the centre."
            )
else:
    st.caption(
        "This stack is big: the measurement back-propagates through it "
        f"{rf.ERF_NETWORKS * samples} times and can take ten seconds or more on a CPU."
    )

run, exact = rf.chosen_trained(trained, layers)
if run is not None:
    st.subheader("Your trained network")
    if not exact:
        st.info(
            "The stack no longer matches the network you trained, so there is no trained "
            "effective field to measure: choose the preset again to undo your edits."
        )
    else:
        try:
            version = rf.weights_version(owner, run.run_id)
            trained_erf = rf.cached_trained_erf(owner, run.run_id, version, size, index, samples)
        except KeyError:  # RunNotFoundError: deleted on the Train page meanwhile
            st.info("This run is no longer in your history.")
        except ValueError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            st.markdown(
                "The same measurement on the network you trained (same neuron, your real "
                f"weights, {samples} random images). Training reshapes the field: the weights "
                "learn which pixels around the centre carry the evidence for your classes, so "
                "the falloff may narrow, widen or lose its symmetry."
            )
            rf.show_erf_pair(erf, trained_erf)

st.header("5 · The 1-D tree")


@url_state.fragment
def tree_view(layers: list[dict], index: int, size: int) -> None:
    """The 1-D dependency tree of the stack up to the chosen layer (its own two sliders)."""
    length = st.slider(
        "Input length for the tree (a 1-D slice along the width)",
        4,
        48,
        min(size, 16),
        key="rf.tree_size",
    )
    try:
        tree = field_tree(layers[: index + 1], length)
        one_d = receptive_fields(layers[: index + 1], length)
        geometry = [(0.0, 1)] + [(d["start"], d["jump"]) for d in one_d]
    except StackError as exc:
        st.info(f"On a {length}-pixel input the stack up to layer {index + 1} cannot run: {exc}")
        return
    if len(tree) > 13:
        st.info("The tree view is for stacks of up to 12 layers: pick an earlier layer.")
        return
    top = tree[-1].size
    # A cell the tree no longer has (a shorter input, another layer, a link) starts at the centre.
    url_state.fit("rf.cell", range(top), top // 2, f"for layer {index + 1}'s {top} cells")
    cell = st.slider("Cell of the chosen layer", 0, max(top - 1, 1), top // 2, key="rf.cell")
    figure_text.plotly_chart(
        rf.shared_tree_figure(layers[: index + 1], length, tree, geometry, min(cell, top - 1)),
        width="stretch",
        config={"displayModeBar": False},
        key="rf.tree",
    )
    st.caption(
        "Each row is a layer (input at the bottom), each dot a cell placed at its field's "
        "centre; blue lines are the connections the chosen cell depends on, orange squares "
        "the padding cells it reads."
    )


tree_view(layers, index, size)

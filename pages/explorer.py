"""Feature-map explorer: your image through a trained CNN, layer by layer, and why it decided."""

from __future__ import annotations

import streamlit as st

from ui import explanations as why
from ui import explorer as ex
from ui import url_state
from ui.explorer_models import model_picker
from ui.image_source import image_picker
from ui.navigation import ensure_app_navigation
from ui.owner import owner_id

ensure_app_navigation()
st.title("Feature-map explorer")
st.markdown(
    "Give a trained network **any image** and look inside: what it receives, what every layer "
    "responds to, what it predicts, **why** (five explanation methods, each with what it can "
    "and cannot tell), and how a change too small to see can make it wrong."
)

left, right = st.columns(2, gap="large")
with left:
    target = model_picker(owner_id())
    if st.session_state.get("explorer.shown_model", target.key) != target.key:
        # Another network: its layers, channels, classes and occlusion windows start over.
        mine = ("layer", "channel", "class", "cam_layer", "occ_window", "occ_stride")
        url_state.forget(*(f"explorer.{k}" for k in mine))
    st.session_state["explorer.shown_model"] = target.key
with right:
    source = image_picker("explorer.image", default_sample="digit")

try:
    analysis = ex.analyse(target.key, source.digest, target, source.image)
except ValueError as error:
    st.error(str(error), icon=":material/error:")
    st.stop()

st.header("1 · What the network receives")
ex.show_preprocessing(analysis.prep, target, source.digest)


@url_state.fragment
def prediction() -> None:
    """Probabilities and the temperature slider (reruns alone)."""
    ex.show_prediction(analysis.scores, target.classes)


@url_state.fragment
def feature_maps() -> None:
    """The layer table, a layer's tiled maps, and one channel enlarged (reruns alone)."""
    views = analysis.views
    ex.layer_table(views)
    if st.toggle("Show every layer at once", value=len(views) <= 12, key="explorer.every"):
        ex.show_all_layers(target, source.digest, views)
    st.subheader("One layer up close")
    # One layer and channel choice for every network: a link holds their positions (from 0); a
    # network without that layer, or a layer without that channel, shows its first layer / top
    # channel (with a notice when a link asked for it).
    url_state.fit("explorer.layer", range(len(views)), 0, f"for this network's {len(views)} layers")
    index = st.selectbox(
        "Layer to look into",
        range(len(views)),
        format_func=lambda i: (
            f"{views[i].name} · {views[i].kind} · " + "×".join(map(str, views[i].shape))
        ),
        key="explorer.layer",
        on_change=url_state.forget,
        args=("explorer.channel",),
    )
    view = views[index]
    ex.show_layer(target, source.digest, view)
    top, count = view.top_channels[0], view.shape[0]
    url_state.fit("explorer.channel", range(count), top, f"for layer {index}'s {count} channels")
    channel = st.selectbox(
        "Channel to enlarge",
        range(count),
        format_func=lambda c: f"{c}{' (top)' if c == view.top_channels[0] else ''}",
        index=top,
        key="explorer.channel",
    )
    ex.show_channel(target, analysis, view, channel, source.digest)


@url_state.fragment
def explanation() -> None:
    """Method, class and parameters, then the map over the image (reruns alone)."""
    predicted = int(analysis.scores.argmax())
    # Grad-CAM needs a grid of positions: layers already pooled to 1×1 are left out.
    grids = {i: v.name for i, v in enumerate(analysis.views) if v.shape[1] * v.shape[2] > 1}
    settings = why.explain_controls(target, predicted, grids)
    try:
        why.show_explanation(target, source.digest, settings, analysis.prep.pixels, analysis.prep.x)
    except ValueError as error:
        st.error(str(error), icon=":material/error:")


@url_state.fragment
def attack() -> None:
    """FGSM / PGD at an ε in grey levels (reruns alone)."""
    try:
        why.show_attack(target, source.digest, analysis.prep.x)
    except ValueError as error:
        st.error(str(error), icon=":material/error:")


if analysis.scores is not None:
    st.header("2 · The prediction")
    prediction()
st.header("3 · Feature maps, layer by layer")
feature_maps()
if analysis.scores is None:
    st.info(
        "This network has no classifier, so there is no prediction to explain or attack. Pick a "
        "trained network to see why it decides.",
        icon=":material/info:",
    )
    st.stop()
st.header("4 · Why this class?")
explanation()
st.header("5 · Adversarial examples")
attack()

"""The feature-map explorer's network picker: the bundled networks, the classic-vision bank,
ResNet-18 when its ImageNet weights are present, and the learner's own runs.

Networks are loaded once per server (``st.cache_resource``: read-only, shared); a learner's own
runs are keyed by their owner id, so nobody else's key can reach them.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cnnlab import imagenet
from cnnlab.bundled import BUNDLED, load_bundled
from cnnlab.classic_vision import classic_labels, classic_model
from cnnlab.explorer import Explorable
from cnnlab.runs import RunNotFoundError, StoreUnavailableError, open_store
from cnnlab.trained import list_trained, load_trained

CLASSIC = "classic"
IMAGENET = "imagenet"
MISSING_IMAGENET = "imagenet-missing"


@st.cache_resource(show_spinner=False)
def _bundled(name: str) -> Explorable:
    info, model = load_bundled(name)
    c, h, _ = info.input_shape
    return Explorable(
        f"bundled:{name}",
        info.title,
        model,
        c,
        h,
        info.preprocess,
        info.mean,
        info.std,
        info.classes,
        f"Trained by the project's trainer ({info.test_accuracy:.1%} on its test split).",
        recipe=info.command,
    )


@st.cache_resource(show_spinner=False)
def _classic() -> Explorable:
    labels = classic_labels()
    return Explorable(
        CLASSIC,
        "Classic vision: Gabor + colour-opponent filters",
        classic_model(),
        3,
        256,
        "fit",
        (0.0, 0.0, 0.0),
        (1.0, 1.0, 1.0),
        note="No training: 24 oriented Gabor filters (4 orientations × 3 scales × even/odd "
        "phase) and 4 colour-opponent centre–surround filters, then ReLU and 2×2 max-pooling. "
        "Images are scaled to at most 256 px.",
        channel_labels={"0": labels, "1": labels, "2": labels},
    )


@st.cache_resource(show_spinner=False)
def _imagenet(path: str) -> Explorable:
    from cnnlab.zoo import build  # the architecture zoo, torchvision's module names

    model = imagenet.load_imagenet(Path(path), lambda: build("resnet18"))
    return Explorable(
        IMAGENET,
        "ResNet-18, pretrained on ImageNet",
        model,
        3,
        224,
        "imagenet",
        imagenet.MEAN,
        imagenet.STD,
        imagenet.labels(),
        note="torchvision's ImageNet weights (69.8 % top-1): 1,000 everyday classes.",
    )


@st.cache_resource(show_spinner=False, max_entries=16)
def _run(owner: str, run_id: str) -> Explorable:
    trained = load_trained(open_store(), owner, run_id)
    c, h, _ = trained.run.input_shape
    # MNIST's digits were centred by mass; everything else is a square resize.
    resize = "digits" if trained.run.dataset == "mnist" else "square"
    return Explorable(
        f"run:{owner}:{run_id}",
        trained.run.label,
        trained.model,
        c,
        h,
        resize,
        trained.run.mean,
        trained.run.std,
        trained.run.classes,
        note=f"Your network, trained on {trained.run.dataset}.",
    )


def _choices(owner: str) -> dict[str, str]:
    """Model key → label, the bundled ones first, then ImageNet, then the learner's runs."""
    labels = {f"bundled:{name}": f"Bundled: {name}" for name in BUNDLED}
    labels[CLASSIC] = "Classic vision (Gabor + colour, no training)"
    if imagenet.weights_path().is_file():
        labels[IMAGENET] = "ResNet-18 (ImageNet)"
    else:
        labels[MISSING_IMAGENET] = "ResNet-18 (ImageNet): weights not on this server"
    try:
        for run in list_trained(open_store(), owner):
            labels[f"run:{run.run_id}"] = f"Your run: {run.label}"
    except StoreUnavailableError as error:
        st.error(str(error), icon=":material/cloud_off:")
    except (OSError, ValueError) as error:
        st.caption(f"Your trained networks cannot be listed right now ({error}).")
    return labels


def model_picker(owner: str) -> Explorable:
    """Pick a network; show what it is. Falls back to the digits network after an error."""
    labels = _choices(owner)
    wanted = st.session_state.get("explorer.model")
    if wanted == IMAGENET and IMAGENET not in labels:  # a link from a server that has the weights
        st.session_state["explorer.model"] = MISSING_IMAGENET
    elif wanted is not None and wanted not in labels:  # a run deleted meanwhile
        st.session_state["explorer.model"] = next(iter(labels))
    key = st.selectbox(
        "Network",
        list(labels),
        format_func=labels.get,
        key="explorer.model",
        index=0,
    )
    try:
        target = _load(owner, key)
    except (ValueError, RunNotFoundError) as error:
        st.error(f"This network cannot be used: {error}", icon=":material/error:")
        target = _bundled(BUNDLED[0])
    if target.note:
        st.caption(target.note)
    if target.recipe:
        with st.expander("How it was made"):
            st.code(target.recipe, language="bash", wrap_lines=True)
    return target


def _load(owner: str, key: str) -> Explorable:
    if key.startswith("bundled:"):
        return _bundled(key.removeprefix("bundled:"))
    if key == CLASSIC:
        return _classic()
    if key == IMAGENET:
        return _imagenet(str(imagenet.weights_path()))
    if key == MISSING_IMAGENET:
        _offer_download()
        raise ValueError("its weights are not here yet; the digits network is shown instead.")
    return _run(owner, key.removeprefix("run:"))


def _offer_download() -> None:
    path = imagenet.weights_path()
    st.info(
        f"Put torchvision's ResNet-18 weights as safetensors at `{path}` (or point "
        f"`CNNLAB_IMAGENET_WEIGHTS` at them), or download them once ({imagenet.WEIGHTS_MB} MB, "
        f"checked against a pinned SHA-256).",
        icon=":material/download:",
    )
    if st.button("Download the ImageNet weights", key="explorer.fetch"):
        with st.spinner("Downloading…"):
            try:
                imagenet.fetch_weights(path)
            except ValueError as error:
                st.error(str(error), icon=":material/error:")
            else:
                st.rerun()

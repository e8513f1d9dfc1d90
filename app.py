"""CNN Lab: the home page and the navigation that groups every page into sections."""

from __future__ import annotations

import streamlit as st
import torch

from cnnlab.device import DeviceInfo, describe_device
from cnnlab.explain import pipeline_dot, pipeline_stages
from cnnlab.runs import StoreUnavailableError
from ui import figure_text, lesson_view, url_state
from ui.heap import freeze_import_heap
from ui.navigation import PAGES, SECTIONS, sidebar_links


def _one_torch_thread() -> None:
    # Page computations are many small tensor operations. With a second torch thread each one
    # waits for a core that the other sessions and the training workers keep busy: under load
    # here the effective receptive field took 1.7 s on two threads and 0.07 s on one, the
    # pooling shift experiment 0.9 s and 0.08 s. (Training workers set their own threads.)
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


@st.cache_resource
def _device() -> DeviceInfo:
    # Probing CUDA and /proc once per server is enough; the answer never changes while it runs.
    return describe_device()


@st.cache_resource
def _pipeline_dot() -> str:
    # The same diagram for everyone: build the model once per server, not once per visit.
    return pipeline_dot(pipeline_stages())


def home() -> None:
    """What a CNN is, the pipeline as a diagram, the learning path, and the compute device."""
    st.title("CNN Lab")
    st.markdown(
        "Learn convolutional neural networks by **seeing and touching** them: slide a kernel "
        "over a photo, predict output sizes, watch pooling and receptive fields, and train a "
        "small CNN live. Every number on these pages is computed, and checked against PyTorch."
    )
    st.header("What is a CNN?")
    st.markdown(
        "A convolutional neural network turns an image into a prediction through a pipeline of "
        "simple steps. **Convolution** slides small learned filters (kernels) over the image; "
        "each filter answers *'how much does this patch look like my pattern?'* at every "
        "position, giving a feature map. **ReLU** keeps the positive evidence. **Pooling** "
        "shrinks the maps, keeping the strongest responses. After a few such blocks the maps are "
        "**flattened** into one vector, a **fully connected** layer turns it into a score per "
        "class, and **softmax** turns scores into probabilities. Because a filter is shared by "
        "every position, a CNN needs far fewer weights than a fully connected network would."
    )
    figure_text.graphviz_chart(_pipeline_dot(), width="stretch")
    st.caption(
        "Shapes and weight counts above are read off a real PyTorch model run on a blank "
        "28×28 grayscale image; training finds the weights, the shapes follow from the layers."
    )
    st.header("A learning path")
    if PAGES:
        for number, spec in enumerate(PAGES, start=1):
            st.page_link(spec.path, label=f"{number}. {spec.title}", icon=spec.icon)
            st.caption(spec.blurb)
    st.header("Compute device")
    info = _device()
    if info.is_gpu:
        st.success(f"GPU detected: **{info.name}** ({info.device}). Training runs on the GPU.")
    else:
        threads = f"{info.threads} thread" + ("s" if info.threads != 1 else "")
        st.info(f"No GPU detected: computing on the **CPU** ({info.name}, {threads}).")


def main() -> None:
    """Build the navigation from ``ui.navigation.PAGES`` and run the chosen page."""
    freeze_import_heap()
    _one_torch_thread()
    st.set_page_config(page_title="CNN Lab", page_icon="assets/favicon.png", layout="wide")
    sections: dict[str, list] = {
        "": [st.Page(home, title="Home", icon=":material/home:", default=True)]
    }
    for section in SECTIONS:
        pages = [
            st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path)
            for p in PAGES
            if p.section == section
        ]
        if pages:
            sections[section] = pages
    page = st.navigation(sections, position="hidden")
    sidebar_links(sections)
    problems = url_state.open_page(page.url_path or "home")
    lesson_view.apply()
    url_state.notice(problems)
    try:
        page.run()
    except StoreUnavailableError as error:  # the runs database is down, or busy past its wait
        st.error(str(error), icon=":material/cloud_off:")
    finally:  # st.stop and reruns end a page early too
        url_state.close_page()
    freeze_import_heap()  # what the page imported on its first run, before its fragments rerun


main()

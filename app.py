"""CNN Lab: the home page and the navigation that groups every page into sections."""

from __future__ import annotations

import streamlit as st

from cnnlab.device import DeviceInfo, describe_device
from ui.navigation import PAGES, SECTIONS

PIPELINE_DOT = """
digraph cnn {
  rankdir=LR; bgcolor="transparent";
  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11,
        fillcolor="#e0ecff", color="#2563eb"];
  edge [color="#475569", fontname="Helvetica", fontsize=9];
  input [label="Input image\\n28×28×1", fillcolor="#f1f5f9", color="#64748b"];
  conv [label="Convolution\\n8 filters 3×3\\n→ 28×28×8"];
  relu [label="ReLU\\nmax(0, x)"];
  pool [label="Max pool 2×2\\n→ 14×14×8"];
  flat [label="Flatten\\n→ 1568"];
  fc [label="Fully connected\\n→ 10 scores"];
  soft [label="Softmax\\n→ 10 probabilities", fillcolor="#dcfce7", color="#16a34a"];
  input -> conv [label="slide kernels"];
  conv -> relu -> pool -> flat -> fc -> soft;
}
"""


@st.cache_resource
def _device() -> DeviceInfo:
    # Probing CUDA and /proc once per server is enough; the answer never changes while it runs.
    return describe_device()


def home() -> None:
    """What a CNN is, the pipeline as a diagram, the learning path, and the compute device."""
    st.title("CNN Lab")
    st.markdown(
        "Learn convolutional neural networks by **seeing and touching** them: slide a kernel "
        "over a photo, predict output sizes, watch pooling and receptive fields, and train a "
        "small CNN live. Every number on these pages is computed, and checked against PyTorch."
    )
    st.subheader("What is a CNN?")
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
    st.graphviz_chart(PIPELINE_DOT, width="stretch")
    st.subheader("A learning path")
    if PAGES:
        for number, spec in enumerate(PAGES, start=1):
            st.page_link(spec.path, label=f"{number}. {spec.title}", icon=spec.icon)
            st.caption(spec.blurb)
    st.subheader("Compute device")
    info = _device()
    if info.is_gpu:
        st.success(f"GPU detected: **{info.name}** ({info.device}). Training runs on the GPU.")
    else:
        st.info(f"No GPU detected: computing on the **CPU** ({info.name}, {info.threads} threads).")


def main() -> None:
    """Build the navigation from ``ui.navigation.PAGES`` and run the chosen page."""
    st.set_page_config(page_title="CNN Lab", page_icon=":material/grid_on:", layout="wide")
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
    st.navigation(sections).run()


main()

"""The one list of pages: ``app.py`` builds the navigation from it and the tests parametrize
over it, so a new page is registered here once and is smoke-tested in AppTest and the browser."""

from __future__ import annotations

from dataclasses import dataclass

SECTIONS = ("Foundations", "Build & train", "Explore")


@dataclass(frozen=True)
class PageSpec:
    """A page of the app: its file, how the navigation shows it, and one line for the home page."""

    path: str
    title: str
    icon: str
    url_path: str
    section: str
    blurb: str


PAGES: tuple[PageSpec, ...] = (
    PageSpec(
        path="pages/convolution.py",
        title="Convolution & kernels",
        icon=":material/blur_on:",
        url_path="convolution",
        section="Foundations",
        blurb="Slide a kernel over any image, see the feature map, and check every number.",
    ),
    PageSpec(
        path="pages/arithmetic.py",
        title="Stride, padding & dilation",
        icon=":material/straighten:",
        url_path="arithmetic",
        section="Foundations",
        blurb="Predict any layer's output size, watch each window slide, and quiz yourself.",
    ),
    PageSpec(
        path="pages/pooling.py",
        title="Pooling",
        icon=":material/grid_view:",
        url_path="pooling",
        section="Foundations",
        blurb="Max, average, L2 and global pooling window by window, and how much "
        "translation invariance pooling really buys.",
    ),
    PageSpec(
        path="pages/receptive_field.py",
        title="Receptive fields",
        icon=":material/center_focus_strong:",
        url_path="receptive_field",
        section="Foundations",
        blurb="Which pixels a neuron can see, layer by layer, on your own image, and which "
        "of them really matter (the effective receptive field).",
    ),
    PageSpec(
        path="pages/train.py",
        title="Train a CNN",
        icon=":material/model_training:",
        url_path="train",
        section="Build & train",
        blurb="Design a small CNN, train it live on real images in a background worker, and see "
        "what it learned: curves, mistakes, and kernels epoch by epoch.",
    ),
    PageSpec(
        path="pages/activations.py",
        title="Activations & normalisation",
        icon=":material/show_chart:",
        url_path="activations",
        section="Build & train",
        blurb="ReLU to GELU with their gradients, softmax temperature, batch norm and dropout made "
        "visible, and one network trained with and without batch norm side by side.",
    ),
    PageSpec(
        path="pages/choices.py",
        title="Training choices",
        icon=":material/tune:",
        url_path="choices",
        section="Build & train",
        blurb="Losses as functions of one logit, optimisers racing across loss landscapes, a "
        "learning-rate range test, and augmentation on real examples.",
    ),
    PageSpec(
        path="pages/zoo.py",
        title="Architecture zoo",
        icon=":material/account_tree:",
        url_path="zoo",
        section="Explore",
        blurb="LeNet-5 to MobileNet V2: every layer's shape, parameters, multiply-adds, memory "
        "and receptive field, checked against the published figures, and the PyTorch code.",
    ),
    PageSpec(
        path="pages/conv_variants.py",
        title="Convolution variants",
        icon=":material/call_split:",
        url_path="conv_variants",
        section="Explore",
        blurb="Standard, 1×1, depthwise, separable, grouped, dilated and transposed: what each "
        "connects, costs and does to an image; 1-D and 3-D convolution on signals and frames.",
    ),
    PageSpec(
        path="pages/explorer.py",
        title="Feature-map explorer",
        icon=":material/layers:",
        url_path="explorer",
        section="Explore",
        blurb="Your image through a trained CNN: every layer's feature maps, the prediction, why "
        "it decided (Grad-CAM, saliency, occlusion, integrated gradients), and adversarial "
        "examples.",
    ),
    PageSpec(
        path="pages/residual.py",
        title="Skip connections",
        icon=":material/alt_route:",
        url_path="residual",
        section="Explore",
        blurb="Measure how gradients vanish in a deep plain network and flow through a residual "
        "one, and take residual, bottleneck, inverted-residual and dense blocks apart.",
    ),
    PageSpec(
        path="pages/detection.py",
        title="From classifier to detector",
        icon=":material/select_all:",
        url_path="detection",
        section="Explore",
        blurb="Slide a classifier over a scene of shapes, then step through non-maximum "
        "suppression box by box, with every IoU and the mAP of the result.",
    ),
)


def ensure_app_navigation() -> None:
    """Make sure this page runs inside ``app.py``'s navigation; call it first in every page.

    Streamlit keeps a legacy mode for apps with a ``pages/`` folder: until some session has run
    ``st.navigation``, a fresh server runs a page URL's file straight from ``pages/``, without
    ``app.py`` (no sections, no wide layout). A teacher sharing a page link with a class right
    after starting the server would hit exactly that. Leaving that mode and rerunning sends the
    same URL through ``app.py``, which resolves it to the same page.
    """
    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def sidebar_links(sections: dict[str, list]) -> None:
    """The navigation as section headings over page links in the sidebar.

    Streamlit's own sectioned navigation puts each section header straight into its ``<ul>``,
    which screen readers announce as a broken list (axe-core: ``list``, serious). Links under
    plain headings say the same thing with valid markup; ``app.py`` hides the built-in one.
    """
    import streamlit as st

    with st.sidebar.container(key="app_nav"):
        for section, pages in sections.items():
            if section:
                st.markdown(f"**{section}**")
            for page in pages:
                st.page_link(page)

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
        path="pages/arithmetic.py",
        title="Stride, padding & dilation",
        icon=":material/straighten:",
        url_path="arithmetic",
        section="Foundations",
        blurb="Predict any layer's output size, watch each window slide, and quiz yourself.",
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
)

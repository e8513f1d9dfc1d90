"""The training-choices lab: cached curves, paths and range tests, and their figures."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from cnnlab.choices import (
    LOSS_LABELS,
    LOSSES,
    OPTIMIZER_LABELS,
    LossCurve,
    Path,
    RangeTest,
    landscape_grid,
    loss_curve,
    lr_range_test,
    optimizer_path,
)
from cnnlab.data import augment, make_shapes
from cnnlab.models import PRESETS, build_model
from cnnlab.seeding import seeded
from cnnlab.viz import tile, upscale
from ui.heap import FIGURES_PER_CACHE

LOSS_COLOURS = {"cross_entropy": "#2563eb", "bce": "#16a34a", "mse": "#dc2626"}
PATH_COLOURS = {
    "sgd": "#dc2626",
    "momentum": "#f59e0b",
    "rmsprop": "#9333ea",
    "adam": "#2563eb",
    "adamw": "#16a34a",
}
RANGE_IMAGES = 1000
EXPERIMENTS = ("optimizers", "losses", "lr_batch", "regularisation")  # trained on the page
EXPERIMENT_LABELS = {
    "optimizers": "Optimisers: SGD, momentum, RMSprop, Adam, AdamW",
    "losses": "Losses: cross-entropy, binary cross-entropy, MSE",
    "lr_batch": "Learning rate (too small / good / too large) × batch size (16 / 128)",
    "regularisation": "Overfitting a small set: augmentation, dropout, weight decay, L1, early "
    "stopping",
}
LANDSCAPE_LABELS = {
    "rosenbrock": "Rosenbrock's banana valley",
    "narrow_valley": "A narrow straight valley (50× steeper across)",
    "saddle": "A saddle between two minima",
}


@st.cache_data(max_entries=64)
def curves(classes: int, correct: bool) -> dict[str, LossCurve]:
    """The three losses as the chosen logit moves (the same for every student)."""
    return {kind: loss_curve(kind, classes, correct) for kind in LOSSES}


# Figures are built once per input and shared by every session (read-only: figure_text only
# reads them): building one took 20-25 ms, the page's three about half of each rerun.
@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def losses_figure(classes: int, correct: bool) -> go.Figure:
    """Loss (left) and its gradient (right) against the moving logit."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "gradient ∂loss/∂z"))
    for kind, c in curves(classes, correct).items():
        style = {"color": LOSS_COLOURS[kind]}
        fig.add_scatter(x=c.z, y=c.loss, name=LOSS_LABELS[kind], line=style, row=1, col=1)
        fig.add_scatter(x=c.z, y=c.grad, line=style, showlegend=False, row=1, col=2)
    which = "true class" if correct else "a wrong class"
    fig.update_xaxes(title_text=f"logit z of {which}")
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.25})  # fmt: skip
    return fig


@st.cache_data(max_entries=256)
def paths(
    landscape: str, optimizers: tuple[str, ...], lrs: tuple[float, ...], steps: int
) -> list[Path]:
    """Each optimiser's path on the landscape (the same for every student)."""
    return [optimizer_path(landscape, o, lr, steps) for o, lr in zip(optimizers, lrs, strict=True)]


@st.cache_data(max_entries=8)
def contour(landscape: str) -> tuple[list[float], list[float], list[list[float]]]:
    """The landscape on a grid, log-scaled so valleys show (the same for every student)."""
    xs, ys, z = landscape_grid(landscape, points=81)
    values = np.asarray(z)
    return xs, ys, np.log10(values - values.min() + 1e-3).tolist()


@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def paths_figure(
    landscape: str, optimizers: tuple[str, ...], lrs: tuple[float, ...], steps: int, step: int
) -> go.Figure:
    """Contours of the landscape with every path drawn up to ``step``."""
    results = paths(landscape, optimizers, lrs, steps)
    xs, ys, z = contour(landscape)
    fig = go.Figure(go.Contour(x=xs, y=ys, z=z, colorscale="Greys", showscale=False,
                               ncontours=25, line={"width": 0.5}, hoverinfo="skip"))  # fmt: skip
    for path in results:
        pts = np.asarray(path.points[: step + 1])
        fig.add_scatter(
            x=pts[:, 0], y=pts[:, 1], mode="lines+markers", marker={"size": 3},
            name=OPTIMIZER_LABELS[path.optimizer] + (" (diverged)" if path.diverged else ""),
            line={"color": PATH_COLOURS[path.optimizer], "width": 2},
        )  # fmt: skip
    fig.update_xaxes(range=[xs[0], xs[-1]])
    fig.update_yaxes(range=[ys[0], ys[-1]])
    fig.update_layout(height=460, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      legend={"orientation": "h", "y": -0.12})  # fmt: skip
    return fig


@st.cache_resource
def _range_data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    data = make_shapes(RANGE_IMAGES, 1, seed=seed)
    return (data.train_x.float() / 255 - data.mean[0]) / data.std[0], data.train_y


@st.cache_data(max_entries=16, show_spinner="Running the learning-rate range test…")
def range_test(seed: int, steps: int) -> RangeTest:
    """The fast preset's range test on built-in shapes (the same for every student)."""
    x, y = _range_data(seed)
    with seeded(seed):
        model = build_model(PRESETS["fast"], (1, 28, 28), 10)
    return lr_range_test(model, x, y, steps=steps, batch_size=32, seed=seed)


@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def range_figure(seed: int, steps: int) -> go.Figure:
    """Smoothed loss against learning rate (log scale), the suggestion marked."""
    result = range_test(seed, steps)
    fig = go.Figure(go.Scatter(x=result.lrs, y=result.losses, mode="lines", name="loss"))
    fig.add_vline(x=result.suggestion, line_dash="dash", line_color="#16a34a",
                  annotation_text=f"steepest fall: {result.suggestion:.2g}")  # fmt: skip
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis_type="log", xaxis_title="learning rate",
                      yaxis_title="training loss (smoothed)")  # fmt: skip
    return fig


@st.cache_data(max_entries=32)
def augmented(seed: int, shift: int, flip: bool) -> np.ndarray:
    """Eight shapes, then the same eight as the training loop would augment them: one image."""
    images = make_shapes(8, 1, seed=0).train_x  # (8, 1, 28, 28) uint8
    gen = torch.Generator().manual_seed(seed)
    moved = augment(images, gen, shift=shift, flip=flip)
    both = torch.cat([images, moved])[:, 0].numpy()
    return upscale(tile(both, columns=8, gap=2, fill=128), 3)

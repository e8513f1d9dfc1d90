"""The skip-connections lab: cached gradient-flow measurements, their charts and block tables."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from cnnlab.blocks import Anatomy, anatomy, block_dot, build_block
from cnnlab.data import make_shapes
from cnnlab.gradient_flow import GradientFlow, deep_spec, gradient_flow
from ui.heap import FIGURES_PER_CACHE

BATCH = 32
# The block's equation, in LaTeX, and what to notice about it.
FORMULAS = {
    "basic": r"y = \mathrm{ReLU}\big(F(x) + x\big)",
    "bottleneck": r"y = \mathrm{ReLU}\big(F(x) + x\big)",
    "inverted": r"y = x + F(x)",
    "dense": r"x_\ell = H_\ell\big([x_0, x_1, \dots, x_{\ell-1}]\big)",
}
NOTES = {
    "basic": "F is conv 3×3 → BN → ReLU → conv 3×3 → BN. The skip adds the input back, so "
    "the block only has to learn the *change* F(x). When the stride or the channel count "
    "changes, x no longer fits F(x): a 1×1 convolution (with batch norm) projects it to the new "
    "shape; otherwise the skip has no parameters.",
    "bottleneck": "ResNet-50 and deeper: in F a 1×1 conv shrinks the channels fourfold, the 3×3 "
    "conv works on the thin tensor, and a 1×1 conv widens it again — far fewer multiply-adds "
    "than two 3×3 convs on the wide tensor.",
    "inverted": "MobileNetV2 turns the bottleneck inside out: thin in, **expand** ×t, a cheap "
    "depthwise 3×3 (one filter per channel), then a *linear* 1×1 projection back to thin (no "
    "ReLU after it: ReLU on a thin tensor would destroy information). The skip joins the thin "
    "ends, and only when the block keeps the shape.",
    "dense": "DenseNet concatenates instead of adding: each layer H (BN-ReLU-1×1 conv, "
    "BN-ReLU-3×3 conv) sees every earlier layer's "
    "maps and adds k (the growth rate) of its own. Gradients reach early layers directly "
    "through the concatenations.",
}

VARIANTS = ((False, False), (False, True), (True, False), (True, True))  # (residual, batch norm)
COLOURS = {
    "plain": "#dc2626",
    "plain + BN": "#f59e0b",
    "residual": "#2563eb",
    "residual + BN": "#16a34a",
}


def variant_label(residual: bool, batch_norm: bool) -> str:
    """'plain', 'plain + BN', 'residual' or 'residual + BN'."""
    return ("residual" if residual else "plain") + (" + BN" if batch_norm else "")


@st.cache_resource
def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    # One fixed batch of the built-in shapes, standardised: every network sees the same images.
    data = make_shapes(BATCH, 1, seed=seed)
    x = (data.train_x.float() / 255 - data.mean[0]) / data.std[0]
    return x, data.train_y


@st.cache_data(max_entries=32, show_spinner="Measuring the gradients of four networks…")
def flows(depth: int, width: int, steps: int, seed: int) -> dict[str, GradientFlow]:
    """The four networks' gradient norms for these settings (the same for every student)."""
    x, y = _batch(seed)
    return {
        variant_label(r, bn): gradient_flow(
            deep_spec(depth, width, r, bn), x, y, 10, steps, seed=seed
        )
        for r, bn in VARIANTS
    }


# Figures per settings, built once and shared read-only by every session (building both took
# about as long as the rest of the page's rerun).
@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def norms_figure(depth: int, width: int, steps: int, seed: int, after: bool) -> go.Figure:
    """Gradient norm per conv layer (first layer left), log scale, one line per network."""
    fig = go.Figure()
    for label, flow in flows(depth, width, steps, seed).items():
        norms = flow.after if after else flow.at_init
        fig.add_scatter(
            x=list(range(1, len(norms) + 1)), y=norms, mode="lines+markers", name=label,
            line={"color": COLOURS[label]},
        )  # fmt: skip
    fig.update_layout(
        height=380, margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="conv layer (1 = nearest the input)",
        yaxis_title="‖∂loss/∂W‖ (log scale)", yaxis_type="log",
        legend={"orientation": "h", "y": 1.12},
    )  # fmt: skip
    return fig


@st.cache_resource(max_entries=FIGURES_PER_CACHE, ttl=3600, show_spinner=False)
def losses_figure(depth: int, width: int, steps: int, seed: int) -> go.Figure:
    """Training loss per SGD step, one line per network."""
    fig = go.Figure()
    for label, flow in flows(depth, width, steps, seed).items():
        fig.add_scatter(
            x=list(range(1, len(flow.losses) + 1)), y=flow.losses, mode="lines", name=label,
            line={"color": COLOURS[label]},
        )  # fmt: skip
    fig.update_layout(
        height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_title="step",
        yaxis_title="training loss", legend={"orientation": "h", "y": 1.15},
    )  # fmt: skip
    return fig


def flow_table(results: dict[str, GradientFlow]) -> pd.DataFrame:
    """The charts in numbers: first and last layer's gradient and their ratio, before and after."""
    return pd.DataFrame(
        {
            "network": list(results),
            "first layer, at init": [f"{f.at_init[0]:.2e}" for f in results.values()],
            "last layer, at init": [f"{f.at_init[-1]:.2e}" for f in results.values()],
            "first ÷ last, at init": [f"{f.first_to_last:.1e}" for f in results.values()],
            "first ÷ last, after": [f"{f.after[0] / f.after[-1]:.1e}" for f in results.values()],
            "loss: first → last step": [
                f"{f.losses[0]:.3f} → {f.losses[-1]:.3f}" if f.losses else "—"
                for f in results.values()
            ],
        }
    )


@st.cache_data(max_entries=128)
def block(
    kind: str, c_in: int, c_out: int, stride: int, expand: int, side: int
) -> tuple[Anatomy, str]:
    """A block taken apart and its diagram (the same for every student)."""
    a = anatomy(build_block(kind, c_in, c_out, stride, expand), (c_in, side, side))
    return a, block_dot(a)


def steps_table(a: Anatomy) -> pd.DataFrame:
    """The main path in rows, then the skip and the total."""
    rows = [
        {
            "step": s.name,
            "output (H×W×C)": f"{s.shape[1]}×{s.shape[2]}×{s.shape[0]}",
            "parameters": f"{s.params:,}",
        }
        for s in a.steps
    ]
    rows.append(
        {"step": f"skip: {a.skip}", "output (H×W×C)": "", "parameters": f"{a.skip_params:,}"}
    )
    h, w = a.output_shape[1:]
    rows.append(
        {
            "step": "whole block",
            "output (H×W×C)": f"{h}×{w}×{a.output_shape[0]}",
            "parameters": f"{a.params:,}",
        }
    )
    return pd.DataFrame(rows)

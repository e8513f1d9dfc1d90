"""Normalisation widgets and renderers: batch norm made visible, dropout, and the experiment
that trains one network with and without batch norm through the training queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from cnnlab import normalisation as norm
from cnnlab.viz import colourise, sequential_rgb, tile, upscale
from ui import figure_text
from ui.activations import edge_map

if TYPE_CHECKING:
    from cnnlab.jobs import Scheduler
    from cnnlab.runs import RunStore

RUNS_KEY = "norm.experiment"


# -- batch norm ---------------------------------------------------------------------------------
@st.cache_data(max_entries=64, show_spinner=False)
def _batch_norm(
    digest: str, _gray: np.ndarray, batch: int, gamma: float, beta: float, training: bool
) -> tuple[torch.Tensor, norm.BatchNormResult, np.ndarray]:
    """The batch, its batch-norm result and the before/after picture, per image (``digest``
    stands for ``_gray``)."""
    x = norm.feature_batch(_gray, batch, crop=norm.CROP, seed=1)
    # Eval mode needs running statistics: 20 training batches of 8 set them first.
    warm = (
        ()
        if training
        else tuple(norm.feature_batch(_gray, 8, crop=norm.CROP, seed=100 + i) for i in range(20))
    )
    result = norm.batch_norm(x, gamma, beta, training=training, warmup_batches=warm)
    # The first six images' first channel, before (top) and after (bottom), one scale each.
    shown = min(batch, 6)
    before = tile(np.stack([colourise(m)[0] for m in result.before[:shown, 0]]), shown, gap=3)
    after = tile(np.stack([colourise(m)[0] for m in result.after[:shown, 0]]), shown, gap=3)
    gap = np.full((6, before.shape[1], 3), 255, np.uint8)
    return x, result, np.concatenate([before, gap, after])


def batch_norm_section(key: str, gray: np.ndarray, digest: str) -> None:
    """A batch of feature maps through BatchNorm2d: statistics, γ/β, train vs eval, batch of 1."""
    cols = st.columns(4)
    batch = cols[0].slider("Batch size", 1, 16, 8, key=f"{key}.batch")
    gamma = cols[1].slider("γ (scale)", 0.0, 3.0, 1.0, 0.1, key=f"{key}.gamma")
    beta = cols[2].slider("β (shift)", -2.0, 2.0, 0.0, 0.1, key=f"{key}.beta")
    mode = cols[3].radio(
        "Mode",
        ("train", "eval"),
        horizontal=True,
        key=f"{key}.mode",
        help="eval: after 20 training batches have set the running statistics",
    )
    try:
        x, result, strip = _batch_norm(digest, gray, batch, gamma, beta, mode == "train")
    except ValueError as error:
        st.error(str(error), icon=":material/error:")
        return
    frame = pd.DataFrame(
        {
            "mean before": result.mean_before,
            "variance before": result.var_before,
            "mean after": result.mean_after,
            "variance after": result.var_after,
            "running mean": result.running_mean,
            "running variance": result.running_var,
        },
        index=list(norm.FILTER_NAMES),
    ).round(4)
    st.dataframe(frame, width="stretch")
    shown = min(batch, 6)
    st.image(
        strip,
        caption=f"Channel 'vertical edges' of the first {shown} images of the batch: before "
        "(top) and after (bottom) batch norm, each map on its own colour scale.",
        width=min(140 * shown, 840),
        alt="Feature maps of the batch before and after batch norm",
    )
    if mode == "train":
        st.caption(
            f"Train mode: every channel is centred and scaled with **this batch's** statistics, "
            f"then ×γ + β, so the means after are β = {beta:g} and the variances γ² = "
            f"{gamma**2:g} (up to ε). The running statistics took one step (momentum 0.1) "
            "from 0 and 1 towards the batch's."
        )
    else:
        st.caption(
            "Eval mode: the running statistics gathered over 20 training batches replace the "
            "batch's own, so each image is normalised the same way whatever else is in its "
            "batch; the means and variances after are close to, but not exactly, β and γ²."
        )
    if batch == 1 and mode == "train":
        out_diff, in_diff = norm.batch_of_one_erases_levels(x)
        st.warning(
            f"**Batch size 1 in train mode.** The statistics come from one image only. This "
            f"image and the same image at twice the contrast plus 1 differ by up to "
            f"{in_diff:.3g} before batch norm and by only {out_diff:.1e} after it: the layer "
            "erases exactly what distinguishes them, and the running statistics follow each "
            "single image. After a fully connected layer it cannot even run: PyTorch says "
            f"“{norm.batch_norm_1d_batch_of_one()}”.",
            icon=":material/warning:",
        )


def dropout_section(key: str, gray: np.ndarray) -> None:
    """Which activations dropout zeroes, the 1/(1 − p) scaling, and eval mode."""
    p = st.slider("Dropout probability p", 0.0, 0.9, 0.5, 0.05, key=f"{key}.p")
    seed = st.number_input("Random mask (seed)", 0, 1000, 0, key=f"{key}.seed")
    fmap = np.maximum(edge_map(gray), 0)
    top, left = fmap.shape[0] // 2 - 12, fmap.shape[1] // 2 - 12  # the centre, where things are
    relu = fmap[top : top + 24, left : left + 24]
    result = norm.dropout(relu, p, int(seed))
    # One scale for all three, so the survivors' 1/(1 − p) boost shows as brighter cells.
    vmax = float(max(result.train.max(), result.x.max(), 1e-6))
    pictures = [sequential_rgb(v, 0.0, vmax) for v in (result.x, result.train, result.eval)]
    st.image(
        upscale(tile(np.stack(pictures), 3, gap=2), 6),
        alt="Activations before dropout, with dropout in training, and in eval",
        caption="24×24 ReLU activations: the input, dropout in training (zeroed cells "
        "dark, survivors brighter), dropout in eval (unchanged).",
    )
    kept = result.train[(result.train != 0)]
    original = result.x[(result.train != 0)]
    factor = float((kept / original).mean()) if kept.size else float("nan")
    m = st.columns(4)
    m[0].metric("Zeroed (of non-zero)", f"{result.dropped_share:.1%}", help=f"p = {p:g}")
    m[1].metric("Survivors scaled by", f"{factor:.4g}", help=f"1/(1 − p) = {1 / (1 - p):.4g}")
    m[2].metric("Mean in training", f"{result.train.mean():.4f}")
    m[3].metric("Mean in eval (= input)", f"{result.eval.mean():.4f}")


# -- the experiment: same network with and without batch norm, through the training queue -----
def experiment_section(sched: Scheduler, store: RunStore, owner: str) -> None:
    """Queue the two runs one after the other and draw their curves side by side."""
    from ui.run_progress import curves_figure as training_curves
    from ui.training import explain_store_errors

    lr = st.select_slider(
        "Learning rate (SGD, momentum 0.9)", norm.EXPERIMENT_RATES, 0.005, key="norm.exp.lr"
    )
    state = st.session_state.get(RUNS_KEY)
    busy = state is not None and _experiment_active(store, owner, state)
    if st.button(
        "Train both",
        type="primary",
        icon=":material/play_arrow:",
        key="norm.exp.start",
        disabled=busy,
    ):
        try:
            first = _submit(sched, owner, True, lr)
        except ValueError as error:
            st.error(str(error), icon=":material/error:")
        else:
            st.session_state[RUNS_KEY] = state = {"lr": lr, "with": first, "without": None}
    if state is None:
        st.info(
            f"Both runs train the same two-conv network on {norm.EXPERIMENT_LIMIT:,} images of "
            "the built-in shapes set for 3 epochs, one after the other in the training queue."
        )
        return
    active = _experiment_active(store, owner, state)
    st.fragment(run_every=1.0 if active else None)(explain_store_errors(_experiment_body))(
        sched, store, owner, training_curves, active
    )


def _experiment_active(store: RunStore, owner: str, state: dict[str, Any]) -> bool:
    runs = [state["with"], state["without"]]
    if state["without"] is None:
        return True
    return any(store.get_run(owner, r).active for r in runs if r)


def _submit(sched: Scheduler, owner: str, with_bn: bool, lr: float) -> str:
    spec = norm.experiment_spec(with_bn)
    return sched.submit(
        owner,
        dataset=norm.EXPERIMENT_DATASET,
        config=norm.experiment_config(lr),
        spec=spec,
        input_shape=(1, 28, 28),
        num_classes=10,
        name=f"BN experiment: {spec.name}, lr {lr:g}",
        meta={"data_options": {"limit": norm.EXPERIMENT_LIMIT}},
    )


def _experiment_body(
    sched: Scheduler,
    store: RunStore,
    owner: str,
    training_curves: Callable[..., go.Figure],
    was_active: bool,
) -> None:
    state = st.session_state[RUNS_KEY]
    first = store.get_run(owner, state["with"])
    if state["without"] is None and not first.active:
        try:
            state["without"] = _submit(sched, owner, False, state["lr"])
        except ValueError as error:
            st.error(str(error), icon=":material/error:")
            return
    runs = [store.get_run(owner, r) for r in (state["with"], state["without"]) if r]
    cols = st.columns(2)
    for col, run in zip(cols, runs, strict=False):
        accuracy = run.final.get("test_accuracy")
        col.metric(
            run.name,
            f"{accuracy:.1%}" if accuracy is not None else run.status,
            help="test accuracy once finished",
        )
    series = [
        (r.name.split(": ")[1], store.step_curve(owner, r.run_id), store.epochs(owner, r.run_id))
        for r in runs
    ]
    figure_text.plotly_chart(training_curves(series), width="stretch", key="norm.exp.curves")
    if was_active and not any(r.active for r in runs) and state["without"] is not None:
        st.rerun()  # both done: the whole page re-enables the button and stops polling

"""What a finished training run learned: test accuracy, per-class accuracy, the confusion
matrix, the most confident mistakes, the kernels epoch by epoch, the live panel that turns into
these when a run ends, and the owner's runs history."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from cnnlab import viz
from cnnlab.jobs import Scheduler
from cnnlab.runs import Run, RunStore
from ui import figure_text
from ui.run_progress import curves_figure, duration_text, progress_panel, resume_button, train_probe
from ui.training import explain_store_errors, to_rgb, train_runs


# -- results ------------------------------------------------------------------------------------
def results(store: RunStore, owner: str, run: Run, key: str) -> None:
    """What the trained network does: accuracy, per class, confusion, mistakes, kernels."""
    final = run.final
    if not final:
        return
    classes = run.meta.get("classes") or [str(i) for i in range(len(final["confusion"]))]
    c1, c2, c3 = st.columns(3)
    c1.metric("Test accuracy", f"{final['test_accuracy']:.2%}")
    c2.metric("Training time", duration_text(final["train_seconds"]))
    c3.metric("Images / s", f"{final['images_per_second']:,.0f}")
    if final.get("early_stopped"):
        st.info(
            f"Early stopping: the validation loss stopped improving, so the run ended after "
            f"epoch {final['epochs_completed']} and the network keeps the weights of epoch "
            f"{final['best_epoch']} (the lowest validation loss).",
            icon=":material/front_hand:",
        )

    left, right = st.columns(2)
    with left:
        st.markdown("**Accuracy per class** (test set)")
        bar = go.Figure(
            go.Bar(
                x=classes,
                y=final["per_class_accuracy"],
                marker_color="#2563eb",
                text=[f"{a:.0%}" for a in final["per_class_accuracy"]],
            )
        )
        bar.update_layout(height=300, margin={"l": 10, "r": 10, "t": 10, "b": 10})
        bar.update_yaxes(range=[0, 1])
        figure_text.plotly_chart(bar, key=f"{key}.per_class")
    with right:
        st.markdown("**Confusion matrix** (rows: true class, columns: predicted)")
        confusion = np.asarray(final["confusion"])
        heat = go.Figure(
            go.Heatmap(
                z=confusion,
                x=classes,
                y=classes,
                colorscale="Blues",
                text=confusion,
                texttemplate="%{text}",
                hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
            )
        )
        heat.update_yaxes(autorange="reversed")
        heat.update_layout(height=300, margin={"l": 10, "r": 10, "t": 10, "b": 10})
        figure_text.plotly_chart(heat, key=f"{key}.confusion")

    mistakes(store, owner, run, classes)
    kernels_replay(store, owner, run, key)
    deeper_kernels(store, owner, run, key)


def mistakes(store: RunStore, owner: str, run: Run, classes: list[str]) -> None:
    """The test images the network got wrong with the most confidence."""
    wrong = run.final.get("misclassified", {})
    images = store.get_array(owner, run.run_id, "misclassified")
    st.markdown("**Most confident mistakes** (test images)")
    if images is None or not len(images):
        st.caption("No test image was misclassified.")
        return
    shown = min(16, len(images))
    rgb = to_rgb(images[:shown])
    factor = max(1, 84 // rgb.shape[1])
    st.image(
        [viz.upscale(im, factor) for im in rgb],
        caption=[
            f"{classes[t]} → {classes[p]} ({c:.0%})"
            for t, p, c in zip(
                wrong["labels"][:shown],
                wrong["predictions"][:shown],
                wrong["confidences"][:shown],
                strict=True,
            )
        ],
        width=rgb.shape[2] * factor,
        alt=[
            f"A test image of {classes[t]} that the network called {classes[p]}"
            for t, p in zip(wrong["labels"][:shown], wrong["predictions"][:shown], strict=True)
        ],
    )


def kernel_grid(kernels: np.ndarray, vmax: float, max_filters: int = 64) -> np.ndarray:
    """Kernels ``(out, in, kH, kW)`` as one image: a row per filter, its input channels side by
    side, diverging colours on a shared scale (white = 0)."""
    kernels = np.asarray(kernels)[:max_filters]
    _out, cin, kh, kw = kernels.shape
    if cin == 3:
        # Colour input: show each filter as one RGB patch, scaled so 0 is mid-grey.
        rgb = np.clip(0.5 + np.moveaxis(kernels, 1, -1) / (2 * vmax), 0, 1)
        images = np.round(rgb * 255).astype(np.uint8)
    else:
        images = viz.diverging_rgb(kernels[:, : min(cin, 8)].reshape(-1, kh, kw), vmax)
    columns = 8 if cin in (1, 3) else min(cin, 8)
    factor = max(1, 48 // kh)
    return viz.tile(np.stack([viz.upscale(im, factor) for im in images]), columns, gap=3)


def kernels_replay(store: RunStore, owner: str, run: Run, key: str) -> None:
    """First-layer kernels, with a slider replaying how they evolved epoch by epoch."""
    snapshots = {
        e.epoch: e.kernels for e in store.epochs(owner, run.run_id) if e.kernels is not None
    }
    start = store.get_array(owner, run.run_id, "kernels_at_start")
    if start is not None:
        snapshots = {0: start, **snapshots}
    if not snapshots:
        return
    st.markdown("**First-layer kernels**, epoch by epoch")
    vmax = max(float(np.abs(k).max()) for k in snapshots.values()) or 1.0
    epochs = sorted(snapshots)
    epoch = (
        st.select_slider(
            "After epoch (0 = the random start)",
            epochs,
            value=epochs[-1],
            key=f"{key}.kernel_epoch",
        )
        if len(epochs) > 1
        else epochs[0]
    )
    st.image(
        kernel_grid(snapshots[epoch], vmax),
        alt=f"The first layer's kernels after epoch {epoch}, blue negative and red positive",
    )
    st.caption(
        f"Blue negative, white zero, red positive; one colour scale for every epoch "
        f"(±{vmax:.3f}), so you can compare them."
    )


def weight_label(name: str, spec: dict[str, Any]) -> str:
    """A state-dict name as the layer table counts layers: ``3.weight`` -> ``Layer 4 (conv)``,
    ``5.conv1.weight`` -> ``Layer 6 (residual) · conv1`` (modules are named by layer index)."""
    index, _, rest = name.partition(".")
    layers = spec.get("layers", [])
    if not index.isdigit() or int(index) >= len(layers):
        return name
    where = f"Layer {int(index) + 1} ({layers[int(index)].get('kind')})"
    inner = rest.removesuffix("weight").rstrip(".")
    return f"{where} · {inner}" if inner else where


def deeper_kernels(store: RunStore, owner: str, run: Run, key: str) -> None:
    """Learned kernels of a deeper convolution (first input channels of each filter)."""
    path = store.weights_path(owner, run.run_id)
    if path is None:
        return
    convs = {
        name: t for name, t in _weights(str(path), path.stat().st_mtime).items() if t.ndim == 4
    }
    deeper = [name for name in convs if name != next(iter(convs))]
    if not deeper:
        return
    st.markdown("**Deeper kernels**")
    name = st.selectbox(
        "Convolution weights",
        deeper,
        format_func=lambda n: weight_label(n, run.spec),
        key=f"{key}.deeper",
    )
    weights = convs[name]
    label = weight_label(name, run.spec)
    st.image(
        kernel_grid(weights, float(np.abs(weights).max()) or 1.0, max_filters=16),
        alt=f"Learned kernels of {label}, blue negative and red positive",
    )
    st.caption(
        f"{label}: {weights.shape[0]} filters × {weights.shape[1]} input channels of "
        f"{weights.shape[2]}×{weights.shape[3]}; first 16 filters, first 8 input channels."
    )


@st.cache_data(max_entries=8)
def _weights(path: str, mtime: float) -> dict[str, np.ndarray]:
    """Weights as arrays (keyed on the file's path and modification time)."""
    from cnnlab.runs import load_weights

    return {k: v.numpy() for k, v in load_weights(path).items()}


# -- history ------------------------------------------------------------------------------------
def history_frame(runs: list[Run]) -> pd.DataFrame:
    """The owner's runs as a table."""
    import datetime as dt

    return pd.DataFrame(
        [
            {
                "run": r.run_id,
                "name": r.name,
                "data set": r.dataset,
                "status": r.status.replace("_", " "),
                "test accuracy": r.final.get("test_accuracy"),
                "epochs": r.config.get("epochs"),
                "started": dt.datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M"),
            }
            for r in runs
        ]
    )


# -- page glue: the live panel and the history --------------------------------------------------
def live_panel(store: RunStore, sched: Scheduler, owner: str, run_id: str) -> None:
    """The watched run: polled twice a second while it is active, results once it ended."""
    run = store.get_run(owner, run_id)
    # Only an active run polls: an idle page costs the server nothing.
    st.fragment(run_every=0.5 if run.active else None)(_live_body)(
        store, sched, owner, run_id, run.active
    )


@explain_store_errors
def _live_body(
    store: RunStore, sched: Scheduler, owner: str, run_id: str, was_active: bool
) -> None:
    try:
        run = store.get_run(owner, run_id)
    except KeyError:
        st.info("This run was deleted.")
        return
    if was_active and not run.active:
        st.rerun()  # the whole page: re-enable Train, stop polling, show the results
    progress_panel(store, sched, owner, run)
    if not run.active:
        results(store, owner, run, "train.result")


def history(store: RunStore, sched: Scheduler, owner: str, export: Any) -> None:
    """The owner's runs: table, comparison chart, and per-run actions."""
    runs = train_runs(store, owner)
    if not runs:
        st.info("No runs yet: train a network and it will be listed here.")
        return
    st.dataframe(
        history_frame(runs),
        hide_index=True,
        width="stretch",
        column_config={"test accuracy": st.column_config.NumberColumn(format="percent")},
    )
    labels = {r.run_id: f"{r.name or r.dataset} · {r.run_id[:6]}" for r in runs}
    compare = st.multiselect(
        "Compare runs",
        list(labels),
        default=list(labels)[: min(2, len(labels))],
        format_func=labels.__getitem__,
        key="train.history.compare",
    )
    if compare:
        series = [(labels[i], store.step_curve(owner, i), store.epochs(owner, i)) for i in compare]
        probes = [train_probe(store, owner, i) for i in compare]
        figure_text.plotly_chart(curves_figure(series, probes), key="train.history.curves")

    chosen = st.selectbox(
        "Run", list(labels), format_func=labels.__getitem__, key="train.history.run"
    )
    run = store.get_run(owner, chosen)
    c1, c2, c3, c4 = st.columns(4)
    weights = store.weights_path(owner, chosen)
    c1.download_button(
        "Download weights",
        weights.read_bytes() if weights else b"",
        file_name=f"cnnlab_run_{chosen}.safetensors",
        disabled=weights is None,
        icon=":material/download:",
        key="train.history.weights",
        help="safetensors; load with safetensors.torch.load_file",
    )
    try:
        script, script_error = export(run), None
    except (ValueError, KeyError) as exc:
        script, script_error = "", str(exc)
    c2.download_button(
        "Export as a script",
        script,
        file_name=f"cnnlab_run_{chosen}.py",
        mime="text/x-python",
        disabled=not script,
        icon=":material/code:",
        key="train.history.export",
        help=script_error or "A standalone PyTorch script that reproduces this run.",
    )
    if run.resumable:
        with c3:
            resume_button(sched, owner, run, "train.history.resume")
    if c4.button(
        "Delete", icon=":material/delete:", key="train.history.delete", disabled=run.active
    ):
        store.delete_run(owner, chosen)
        st.rerun()
    if run.error:
        st.warning(run.error)
    results(store, owner, run, "train.history.result")

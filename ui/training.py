"""Widgets and renderers of the "Train a CNN" page: data set, layers, hyper-parameters, the live
panel that polls the runs store, the result views and the runs history.

Widgets return plain values; nothing here trains (training runs in a worker process, see
``cnnlab.jobs``): the page only submits jobs and reads the store.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from cnnlab import viz
from cnnlab.jobs import Scheduler, get_scheduler
from cnnlab.queue_estimate import QueueEstimate
from cnnlab.runs import Run, SqliteRunStore, default_data_dir
from ui import figure_text
from ui.image_source import cache_key
from ui.owner import owner_id

DATASETS = {
    "shapes": "Shapes (built in, no download)",
    "mnist": "MNIST handwritten digits",
    "fashion_mnist": "Fashion-MNIST clothing",
    "kmnist": "Kuzushiji-MNIST (Japanese characters)",
    "cifar10": "CIFAR-10 colour photos",
    "upload": "Your own images (a zip of class folders)",
}
# Badges rather than emoji: headless and minimal browsers often lack an emoji font.
STATUS_WORDS = {
    "queued": ":gray-badge[queued]",
    "running": ":blue-badge[training]",
    "finished": ":green-badge[finished]",
    "stopped": ":orange-badge[stopped]",
    "failed": ":red-badge[failed]",
    "interrupted": ":orange-badge[interrupted]",
    "timed_out": ":orange-badge[timed out]",
}
MAX_CURVE_POINTS = 300  # per curve sent to the browser: enough for a smooth line, a small payload
# The columns of the layer table; each layer kind reads the ones it has (cnnlab.models defaults).
LAYER_COLUMNS = ("kind", "out", "kernel", "stride", "padding", "dilation", "groups", "p", "bias")


# -- shared resources ---------------------------------------------------------------------------
@st.cache_resource
def _store(data_dir: str) -> SqliteRunStore:
    # One handle per server and data directory; it opens a connection per thread itself.
    return SqliteRunStore(data_dir)


def store() -> SqliteRunStore:
    """The runs store of this server (``$CNNLAB_DATA_DIR``)."""
    return _store(str(default_data_dir()))


def scheduler() -> Scheduler:
    """The server-wide job scheduler (started on first use), with a worker kept warm for the
    learner on this page (the first run then skips ~5 s of worker start-up)."""
    sched = get_scheduler()
    sched.keep_warm()
    return sched


@st.cache_resource(max_entries=4, show_spinner="Loading the data set…")
def load_data(name: str, limit: int | None) -> Any:
    """The data set as shared read-only arrays (one copy per server, not per user)."""
    from cnnlab.data import load_dataset

    return load_dataset(name, limit=limit)


@st.cache_resource(max_entries=4, show_spinner="Reading your images…")
def _zip_bundle(
    digest: str,
    size: int,
    grayscale: bool,
    limit: int | None,
    _data: bytes,
    _cancelled: Callable[[], bool] | None = None,
) -> Any:
    """The learner's zip as shared read-only arrays, keyed on the SHA-256 of all its bytes
    (``_data`` is not hashed by Streamlit: the digest stands for it). The images are decoded in
    a budgeted child process, killed if ``_cancelled()`` turns true."""
    from cnnlab.uploads import read_zip

    return read_zip(_data, size, grayscale, limit, cancelled=_cancelled)


def _session_gone() -> Callable[[], bool] | None:
    """A check that this browser session has closed (so work done for it can stop)."""
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return None
    server, session_id = runtime.get_instance(), ctx.session_id
    return lambda: not server.is_active_session(session_id)


# -- data set -----------------------------------------------------------------------------------
def dataset_picker(key: str) -> tuple[str, int | None]:
    """Choose the data set and how many training images to use; returns (name, limit)."""
    left, right = st.columns([2, 1])
    name = left.selectbox(
        "Data set",
        list(DATASETS),
        format_func=DATASETS.__getitem__,
        key=f"{key}.name",
        help="Shapes is generated in code. The others are downloaded once, checked against "
        "their published checksums, and cached on the server.",
    )
    limit = right.number_input(
        "Training images (0 = all)",
        min_value=0,
        max_value=60_000,
        value=0,
        step=500,
        key=f"{key}.limit",
        help="Fewer images train faster: handy for a quick demonstration.",
    )
    return name, (int(limit) or None)


def uploaded_data(key: str, limit: int | None) -> tuple[Any, dict[str, Any]]:
    """The learner's zip of class folders as a data set, plus the options the worker needs to
    read it again; ``(None, {})`` until a zip is uploaded. A bad zip raises ``ValueError``."""
    from cnnlab.uploads import SIZES, save_zip, zip_digest

    left, right = st.columns([2, 1])
    uploaded = left.file_uploader(
        "Zip of class folders",
        type=["zip"],
        key=f"{key}.zip",
        help="One folder per class, named after the class (cats/1.png, cats/2.jpg, dogs/1.png "
        "…): at least 2 classes with at least 2 images each. PNG, JPEG, BMP, GIF, WebP, TIFF.",
    )
    size = right.select_slider(
        "Image size",
        SIZES,
        value=28,
        key=f"{key}.size",
        help="Every image is centre-cropped to a square and resized to this many pixels a side.",
    )
    colour = right.toggle("Keep colour", value=False, key=f"{key}.colour")
    if uploaded is None:
        st.info(
            "Upload a zip of one folder per class to train on your own images: 20 % of each "
            "class is kept aside to test the network."
        )
        return None, {}
    raw = uploaded.getvalue()
    digest = zip_digest(raw)
    data = _zip_bundle(digest, int(size), not colour, limit, raw, _session_gone())
    # Only a zip that reads well is kept: the worker process loads it from here by its digest.
    save_zip(raw, owner=owner_id())
    options = {"digest": digest, "size": int(size), "grayscale": not colour}
    return data, {**options, "limit": limit} if limit else options


def class_counts(data: Any) -> str:
    """The classes found and how many images each has, e.g. ``cats (12), dogs (9)``."""
    counts = np.bincount(
        np.concatenate([np.asarray(data.train_y), np.asarray(data.test_y)]),
        minlength=len(data.classes),
    )
    return ", ".join(f"**{c}** ({n})" for c, n in zip(data.classes, counts, strict=True))


def class_samples(train_x: np.ndarray, train_y: np.ndarray, per_class: int = 8) -> list:
    """One strip of ``per_class`` training images per class, as uint8 RGB images."""
    return [_strip(images, per_class) for images in _first_per_class(train_x, train_y, per_class)]


def _first_per_class(
    train_x: np.ndarray, train_y: np.ndarray, per_class: int
) -> tuple[np.ndarray, ...]:
    """The first ``per_class`` training images of each class, ``(n, C, H, W)`` each."""
    labels = range(int(train_y.max()) + 1)
    return tuple(train_x[np.flatnonzero(train_y == label)[:per_class]] for label in labels)


def _strip(images: np.ndarray, per_class: int) -> np.ndarray:
    return viz.upscale(viz.tile(_to_rgb(images), columns=per_class, gap=2), 2)


@st.cache_resource(max_entries=16, show_spinner=False)
def _sample_strips(key: str, _picked: tuple[np.ndarray, ...], per_class: int) -> list[bytes]:
    """The strips of :func:`class_samples` as PNGs, once per server for the same pictures."""
    return [viz.png_bytes(_strip(images, per_class)) for images in _picked]


def _to_rgb(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) uint8 with 1 or 3 channels -> (N, H, W, 3)."""
    images = np.moveaxis(np.asarray(images), 1, -1)
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def show_samples(data: Any, per_class: int = 8) -> None:
    """Sample training images per class, one strip per class."""
    picked = _first_per_class(np.asarray(data.train_x), np.asarray(data.train_y), per_class)
    # Keyed on the very pixels shown (a few KB): exact, and far cheaper than hashing the set.
    strips = _sample_strips(cache_key(*picked), picked, per_class)
    st.image(
        strips,
        caption=list(data.classes),
        width=min(8 * 2 * data.train_x.shape[-1], 480),
        alt=[f"Training images of the class {name}" for name in data.classes],
    )


# -- model --------------------------------------------------------------------------------------
def spec_rows(spec: Any) -> pd.DataFrame:
    """The spec as the layer table's rows (one row per layer, its parameters in columns)."""
    rows = []
    for layer in spec.layers:
        p = layer.resolved()
        out = p.get("out_channels", p.get("out_features"))
        rows.append(
            {
                "kind": layer.kind,
                "out": None if out in (None, "classes") else int(out),
                "kernel": p.get("kernel"),
                "stride": p.get("stride"),
                "padding": None if "padding" not in p else str(p["padding"]),
                "dilation": p.get("dilation"),
                "groups": p.get("groups"),
                "p": p.get("p"),
                "bias": p.get("bias"),
            }
        )
    return pd.DataFrame(rows, columns=list(LAYER_COLUMNS))


def rows_spec(rows: pd.DataFrame, name: str) -> Any:
    """The layer table back to a ModelSpec; empty cells take the layer's defaults.

    An empty "out" on a linear layer means "one output per class".
    """
    from cnnlab.models import _DEFAULTS, LayerSpec, ModelSpec, SpecError

    layers = []
    for i, row in enumerate(rows.to_dict("records")):
        kind = row.get("kind")
        if not isinstance(kind, str) or not kind:
            continue  # a blank row being added in the editor
        if kind not in _DEFAULTS:
            raise SpecError(i, kind, "unknown layer kind.")
        allowed = _DEFAULTS[kind]
        params: dict[str, Any] = {}
        for column in LAYER_COLUMNS[1:]:
            value = row.get(column)
            if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
                continue
            target = {"out": "out_channels" if kind in ("conv", "residual") else "out_features"}
            field = target.get(column, column)
            if field not in allowed:
                continue
            if column == "padding":
                value = value if value in ("same", "valid") else _whole(i, kind, "padding", value)
            elif column == "p":
                try:
                    value = float(value)
                except (TypeError, ValueError):  # text a script put in a number column
                    raise SpecError(i, kind, "'dropout p' must be a number.") from None
            elif column == "bias":
                value = bool(value)
            else:
                value = _whole(i, kind, column, value)
            params[field] = value
        layers.append(LayerSpec(kind, params))
    return ModelSpec(tuple(layers), name)


def _whole(index: int, kind: str, column: str, value: Any) -> int:
    from cnnlab.models import SpecError, shown

    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise SpecError(index, kind, f"'{column}' must be a number, got {shown(value)}.") from None
    if not math.isfinite(number) or number != int(number):
        raise SpecError(index, kind, f"'{column}' must be a whole number, got {shown(value)}.")
    return int(number)


def model_editor(key: str) -> Any:
    """Pick a preset and edit its layers in a table; returns the (unchecked) ModelSpec."""
    from cnnlab.models import KINDS, PRESETS

    names = list(PRESETS)
    preset = st.selectbox(
        "Start from a preset",
        names,
        index=names.index("fast") if "fast" in names else 0,
        key=f"{key}.preset",
        help="fast: the default, tuned for speed. mnist_tutorial: PyTorch's classic example. "
        "lenet5: LeCun 1998. tiny_vgg: CNN Explainer's network. small_resnet: skip connections.",
    )
    edited = st.data_editor(
        spec_rows(PRESETS[preset]),
        num_rows="dynamic",
        hide_index=False,
        width="stretch",
        # A new key per preset resets the table when the preset changes.
        key=f"{key}.layers.{preset}",
        column_config={
            "kind": st.column_config.SelectboxColumn("layer", options=list(KINDS), required=True),
            "out": st.column_config.NumberColumn(
                "out", help="filters (conv) or outputs (linear; empty = one per class)", step=1
            ),
            "kernel": st.column_config.NumberColumn("kernel", min_value=1, step=1),
            "stride": st.column_config.NumberColumn("stride", min_value=1, step=1),
            "padding": st.column_config.TextColumn("padding", help="a number, same or valid"),
            "dilation": st.column_config.NumberColumn("dilation", min_value=1, step=1),
            "groups": st.column_config.NumberColumn("groups", min_value=1, step=1),
            "p": st.column_config.NumberColumn("dropout p", min_value=0.0, max_value=0.99),
            "bias": st.column_config.CheckboxColumn("bias", help="conv and linear layers"),
        },
    )
    return rows_spec(edited, preset if edited.equals(spec_rows(PRESETS[preset])) else "custom")


def summary_frame(summary: Any) -> pd.DataFrame:
    """The per-layer summary (output shape, parameters, FLOPs) as a table with a total row."""
    rows = [
        {
            "#": r.index + 1,
            "layer": r.description,
            "output shape": " × ".join(str(n) for n in r.output_shape),
            "parameters": r.params,
            "FLOPs / image": r.flops,
        }
        for r in summary
    ]
    rows.append(
        {
            "#": None,
            "layer": "total",
            "output shape": " × ".join(str(n) for n in summary.output_shape),
            "parameters": summary.total_params,
            "FLOPs / image": summary.total_flops,
        }
    )
    return pd.DataFrame(rows)


# -- hyper-parameters ---------------------------------------------------------------------------
def hyperparameters(key: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """Training settings as a dict of TrainConfig fields (starting from ``defaults``)."""
    c1, c2, c3, c4 = st.columns(4)
    values = dict(defaults)
    values["epochs"] = c1.number_input(
        "Epochs", 1, 50, int(defaults["epochs"]), key=f"{key}.epochs"
    )
    values["batch_size"] = c2.select_slider(
        "Batch size",
        [16, 32, 64, 128, 256, 512],
        value=int(defaults["batch_size"]),
        key=f"{key}.batch_size",
    )
    values["lr"] = c3.number_input(
        "Learning rate",
        1e-5,
        1.0,
        float(defaults["lr"]),
        format="%.4f",
        step=1e-4,
        key=f"{key}.lr",
    )
    optimizers = ["sgd", "adam", "adamw"]
    values["optimizer"] = c4.selectbox(
        "Optimizer",
        optimizers,
        index=optimizers.index(defaults["optimizer"]),
        key=f"{key}.optimizer",
    )
    c1, c2, c3, c4 = st.columns(4)
    schedules = ["constant", "cosine", "onecycle"]
    values["schedule"] = c1.selectbox(
        "Learning-rate schedule",
        schedules,
        index=schedules.index(defaults["schedule"]),
        key=f"{key}.schedule",
    )
    values["weight_decay"] = c2.number_input(
        "Weight decay",
        0.0,
        1.0,
        float(defaults["weight_decay"]),
        format="%.4f",
        step=1e-4,
        key=f"{key}.weight_decay",
    )
    values["label_smoothing"] = c3.number_input(
        "Label smoothing",
        0.0,
        0.5,
        float(defaults["label_smoothing"]),
        step=0.05,
        key=f"{key}.label_smoothing",
    )
    values["seed"] = c4.number_input("Seed", 0, 2**31 - 1, int(defaults["seed"]), key=f"{key}.seed")
    if "augment" in defaults:
        values["augment"] = st.toggle(
            "Augment (random shifts; flips for photos)",
            value=bool(defaults["augment"]),
            key=f"{key}.augment",
        )
    # Tests (and a teacher's quick demo) can cap every run's steps server-wide.
    cap = os.environ.get("CNNLAB_MAX_STEPS")
    if cap and "max_steps" in defaults:
        values["max_steps"] = int(cap)
    return values


# -- curves -------------------------------------------------------------------------------------
def downsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> tuple:
    """At most ``max_points`` points: bucket means, so noise is smoothed and nothing is skipped."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) <= max_points:
        return x, y
    edges = np.linspace(0, len(x), max_points + 1).astype(int)
    xs = np.array([x[a:b].mean() for a, b in itertools.pairwise(edges)])
    ys = np.array([y[a:b].mean() for a, b in itertools.pairwise(edges)])
    return xs, ys


def curves_figure(series: list[tuple[str, dict[str, np.ndarray], list[Any]]]) -> go.Figure:
    """Loss and accuracy against epochs for one or more runs (train per step, validation per
    epoch); ``series`` holds (label, step curve, epoch records) per run."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"]
    for i, (label, curve, epochs) in enumerate(series):
        colour = palette[i % len(palette)]
        steps_per_epoch = _steps_per_epoch(curve)
        x = curve["step"] / steps_per_epoch if len(curve["step"]) else curve["step"]
        for col, metric in ((1, "loss"), (2, "accuracy")):
            xs, ys = downsample(x, curve[metric])
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    name=f"{label} train",
                    legendgroup=label,
                    line={"color": colour, "width": 1.5},
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
            vals = [(e.epoch, getattr(e, f"val_{metric}")) for e in epochs]
            vals = [(a, b) for a, b in vals if b is not None]
            if vals:
                fig.add_trace(
                    go.Scatter(
                        x=[a for a, _ in vals],
                        y=[b for _, b in vals],
                        name=f"{label} validation",
                        legendgroup=label,
                        mode="lines+markers",
                        line={"color": colour, "dash": "dash"},
                        showlegend=col == 1,
                    ),
                    row=1,
                    col=col,
                )
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(range=[0, 1], row=1, col=2)
    fig.update_layout(
        height=340,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": -0.3},
    )
    return fig


def _steps_per_epoch(curve: dict[str, np.ndarray]) -> float:
    """Steps per epoch, read off the curve (epochs are 1-based; the first may be partial)."""
    steps, epochs = curve["step"], curve["epoch"]
    if not len(steps):
        return 1.0
    last = epochs.max()
    if last <= 1:
        return max(1.0, float(steps.max()))
    return max(1.0, float(steps[epochs == last].min() - 1) / float(last - 1))


# -- the run being watched ----------------------------------------------------------------------
def current_run(store: SqliteRunStore, owner: str, key: str) -> Run | None:
    """The run this session watches: the one it started, else the owner's latest (so navigating
    away and back, or reloading, finds it again)."""
    run_id = st.session_state.get(key)
    if run_id:
        try:
            return store.get_run(owner, run_id)
        except KeyError:
            st.session_state.pop(key, None)
    runs = store.list_runs(owner)
    active = [r for r in runs if r.active]
    return (active or runs or [None])[0]


def progress_panel(store: SqliteRunStore, sched: Scheduler, owner: str, run: Run) -> None:
    """Status, progress bar, images/s, ETA, queue position, curves and the Stop button."""
    p = run.progress
    st.markdown(f"**{run.name or run.run_id}** · {STATUS_WORDS[run.status]} · {run.device or ''}")
    if run.status == "queued":
        st.info(queue_text(sched.estimate(run.run_id)), icon=":material/hourglass_top:")
    if p:
        done = p["step"] / max(1, p["total_steps"])
        st.progress(
            min(1.0, done),
            text=f"epoch {p['epoch']}/{p['epochs']} · step {p['step']}/{p['total_steps']}",
        )
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Loss", f"{p['loss']:.4f}")
        c2.metric("Accuracy (batch)", f"{p['accuracy']:.1%}")
        c3.metric("Images / s", f"{p['images_per_second']:,.0f}")
        c4.metric("Time left", duration_text(p["eta_seconds"]) if run.active else "—")
    if run.active and st.button("Stop", key="train.stop", icon=":material/stop:"):
        store.request_stop(owner, run.run_id)
        st.toast("Stopping after the current step…")
    curve = store.step_curve(owner, run.run_id)
    if len(curve["step"]):
        figure_text.plotly_chart(
            curves_figure([("", curve, store.epochs(owner, run.run_id))]),
            key=f"train.curves.{run.run_id}",
        )
    if run.error:
        (st.warning if run.status in ("interrupted", "timed_out") else st.error)(run.error)


def queue_text(est: QueueEstimate | None) -> str:
    """Where a queued run stands and when it should start, in a sentence or two."""
    if est is None or est.wait_seconds == 0:
        return "Starting…"
    runs = "run" if est.slots == 1 else "runs"
    where = (
        f"Waiting for a free training slot: position **{est.position}** in the queue (this "
        f"server trains {est.slots} {runs} at a time)."
    )
    if est.wait_seconds is None:
        return f"{where} No estimate of the wait yet: no run has finished on this server so far."
    alike = "similar run" if est.similar else "recent run"
    basis = f"{est.samples} {alike}{'s' if est.samples != 1 else ''}"
    return (
        f"{where} Expected to start in about **{duration_text(est.wait_seconds)}**, judging by "
        f"the {basis} that finished on this server (about {duration_text(est.typical_seconds)} "
        f"each)."
    )


def duration_text(seconds: float) -> str:
    """``0.8 s``, ``42 s``, ``3 min 05 s``: tenths below 10 s (the fast preset trains in ~1 s)."""
    if seconds < 9.95:
        return f"{max(seconds, 0.0):.1f} s"
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60:02d} s" if whole >= 60 else f"{whole} s"


# -- results ------------------------------------------------------------------------------------
def results(store: SqliteRunStore, owner: str, run: Run, key: str) -> None:
    """What the trained network does: accuracy, per class, confusion, mistakes, kernels."""
    final = run.final
    if not final:
        return
    classes = run.meta.get("classes") or [str(i) for i in range(len(final["confusion"]))]
    c1, c2, c3 = st.columns(3)
    c1.metric("Test accuracy", f"{final['test_accuracy']:.2%}")
    c2.metric("Training time", duration_text(final["train_seconds"]))
    c3.metric("Images / s", f"{final['images_per_second']:,.0f}")

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


def mistakes(store: SqliteRunStore, owner: str, run: Run, classes: list[str]) -> None:
    """The test images the network got wrong with the most confidence."""
    wrong = run.final.get("misclassified", {})
    images = store.get_array(owner, run.run_id, "misclassified")
    st.markdown("**Most confident mistakes** (test images)")
    if images is None or not len(images):
        st.caption("No test image was misclassified.")
        return
    shown = min(16, len(images))
    rgb = _to_rgb(images[:shown])
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


def kernels_replay(store: SqliteRunStore, owner: str, run: Run, key: str) -> None:
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


def deeper_kernels(store: SqliteRunStore, owner: str, run: Run, key: str) -> None:
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
    name = st.selectbox("Convolution weights", deeper, key=f"{key}.deeper")
    weights = convs[name]
    st.image(
        kernel_grid(weights, float(np.abs(weights).max()) or 1.0, max_filters=16),
        alt=f"Learned kernels of {name}, blue negative and red positive",
    )
    st.caption(
        f"{name}: {weights.shape[0]} filters × {weights.shape[1]} input channels of "
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


# -- page glue: checks, submission, live panel, history -----------------------------------------
@st.cache_data(max_entries=64)
def _summary(spec_json: str, input_shape: tuple[int, int, int], num_classes: int) -> Any:
    from cnnlab.models import ModelSpec, summarize

    return summarize(ModelSpec.from_json(spec_json), input_shape, num_classes)


def summarize_model(spec: Any, data: Any) -> Any:
    """The per-layer summary of ``spec`` on ``data``'s images (raises SpecError if unworkable)."""
    shape = tuple(int(n) for n in data.train_x.shape[1:])
    return _summary(spec.to_json(), shape, len(data.classes))


def default_config() -> dict[str, Any]:
    """The engine's default training settings."""
    from cnnlab.training import TrainConfig

    return TrainConfig().to_dict()


def check_model_limits(spec: Any, data: Any, batch_size: int, sched: Scheduler) -> str:
    """Refuse (ValueError) a model too big for this server; else the memory estimate in words."""
    shape = tuple(int(n) for n in data.train_x.shape[1:])
    return _limits_text(spec.to_json(), shape, len(data.classes), int(batch_size), sched.limits)


# Building the model on the meta device costs tens of ms; a class mostly checks the same few
# presets, so the answer is kept per exact spec, shape, classes, batch and limits (a refusal
# raises and is not kept).
@st.cache_data(max_entries=256, show_spinner=False)
def _limits_text(
    spec_json: str, shape: tuple[int, ...], num_classes: int, batch_size: int, limits: Any
) -> str:
    from cnnlab.jobs import check_limits
    from cnnlab.models import ModelSpec

    spec = ModelSpec.from_json(spec_json)
    est = check_limits(spec, shape, num_classes, batch_size, limits)
    return f"{est.total_bytes / 2**20:,.1f} MB ({est.params:,} parameters)"


def submit(
    sched: Scheduler,
    owner: str,
    dataset: str,
    data_options: dict[str, Any],
    spec: Any,
    data: Any,
    config: dict[str, Any],
    client: str | None = None,
) -> str:
    """Queue a training run for ``owner`` from address ``client``; returns its id (ValueError if
    refused). ``data_options`` are what the worker passes to the data set loader (a limit, an
    uploaded zip's digest and size…)."""
    from cnnlab.training import TrainConfig
    from cnnlab.uploads import UPLOAD

    config = TrainConfig.from_dict(config).to_dict()  # validates before anything is queued
    return sched.submit(
        owner,
        dataset=dataset,
        config=config,
        spec=spec,
        input_shape=tuple(int(n) for n in data.train_x.shape[1:]),
        num_classes=len(data.classes),
        name=f"{spec.name} on {'your images' if dataset == UPLOAD else dataset}",
        meta={"data_options": data_options},
        client=client,
    )


def live_panel(store: SqliteRunStore, sched: Scheduler, owner: str, run_id: str) -> None:
    """The watched run: polled twice a second while it is active, results once it ended."""
    run = store.get_run(owner, run_id)
    # Only an active run polls: an idle page costs the server nothing.
    st.fragment(run_every=0.5 if run.active else None)(_live_body)(
        store, sched, owner, run_id, run.active
    )


def _live_body(
    store: SqliteRunStore, sched: Scheduler, owner: str, run_id: str, was_active: bool
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


def history(
    store: SqliteRunStore, sched: Scheduler, owner: str, export: Any, client: str | None = None
) -> None:
    """The owner's runs: table, comparison chart, and per-run actions."""
    runs = store.list_runs(owner)
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
        figure_text.plotly_chart(curves_figure(series), key="train.history.curves")

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
    if run.resumable and c3.button("Resume", icon=":material/replay:", key="train.history.resume"):
        try:
            sched.resume(owner, chosen, client)
            st.session_state["train.run_id"] = chosen
            st.rerun()
        except ValueError as exc:
            st.error(str(exc))
    if c4.button(
        "Delete", icon=":material/delete:", key="train.history.delete", disabled=run.active
    ):
        store.delete_run(owner, chosen)
        st.rerun()
    if run.error:
        st.warning(run.error)
    results(store, owner, run, "train.history.result")

"""Widgets and renderers of the "Train a CNN" page: data set, layers, hyper-parameters, the live
panel that polls the runs store, the result views and the runs history.

Widgets return plain values; nothing here trains (training runs in a worker process, see
``cnnlab.jobs``): the page only submits jobs and reads the store.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from cnnlab import viz
from cnnlab.experiments import is_experiment
from cnnlab.jobs import Scheduler, get_scheduler
from cnnlab.queue_estimate import QueueEstimate
from cnnlab.runs import Run, RunStore, StoreUnavailableError, open_store
from ui import figure_text
from ui.client import client_address
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
BATCH_SIZES = (4, 8, 16, 32, 64, 128, 256, 512)  # small ones give a small upload enough steps


# -- shared resources ---------------------------------------------------------------------------
def store() -> RunStore:
    """The runs store of this server (SQLite in ``$CNNLAB_DATA_DIR``, or
    ``$CNNLAB_DATABASE_URL``); one handle per process, shared by every session."""
    return open_store()


def store_or_explain() -> RunStore | None:
    """The runs store, or None after one sentence saying its database cannot be reached (the
    rest of the page goes on without it)."""
    try:
        return store()
    except StoreUnavailableError as error:
        st.error(str(error), icon=":material/cloud_off:")
        return None


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
        help="Shapes is generated in code. The others are read from the server's data-set "
        "folder when it has one (CNNLAB_DATASETS_DIR), else downloaded once, checked against "
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
    picked = _first_per_class(train_x, train_y, per_class, int(train_y.max()) + 1)
    return [_strip(images, per_class) for images in picked]


def _first_per_class(
    train_x: np.ndarray, train_y: np.ndarray, per_class: int, classes: int
) -> tuple[np.ndarray, ...]:
    """The first ``per_class`` training images of each class, ``(n, C, H, W)`` each (none for a
    class a small subset left without images)."""
    return tuple(train_x[np.flatnonzero(train_y == label)[:per_class]] for label in range(classes))


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
    picked = _first_per_class(
        np.asarray(data.train_x), np.asarray(data.train_y), per_class, len(data.classes)
    )
    shown = [i for i, images in enumerate(picked) if len(images)]
    missing = [data.classes[i] for i in range(len(data.classes)) if i not in shown]
    if missing:
        st.caption(f"No training images of {', '.join(map(str, missing))} in this subset.")
    if not shown:
        return
    picked = tuple(picked[i] for i in shown)
    # Keyed on the very pixels shown (a few KB): exact, and far cheaper than hashing the set.
    strips = _sample_strips(cache_key(*picked), picked, per_class)
    st.image(
        strips,
        caption=[data.classes[i] for i in shown],
        width=min(8 * 2 * data.train_x.shape[-1], 480),
        alt=[f"Training images of the class {data.classes[i]}" for i in shown],
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
    # Numbered from 1, like the summary table and the messages ("Layer 1 (conv): …"). Float
    # columns: the editor casts a typed 2.5 to an integer column's type (2) before rows_spec
    # could refuse it.
    numbers = {c: "float64" for c in ("out", "kernel", "stride", "dilation", "groups", "p")}
    frame = pd.DataFrame(rows, columns=list(LAYER_COLUMNS), index=range(1, len(rows) + 1))
    return frame.astype(numbers)


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
            field = _field(kind, column)
            if _empty(value) or field not in allowed:
                continue  # an unused cell is reported by ignored_cells
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


def _field(kind: str, column: str) -> str:
    """The layer parameter a table column sets for this kind of layer."""
    if column == "out":
        return "out_channels" if kind in ("conv", "residual") else "out_features"
    return column


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value == ""


def ignored_cells(rows: pd.DataFrame) -> list[str]:
    """Filled cells that the row's kind of layer has no use for (a dropout p on a ReLU row),
    in words: the page says so rather than silently dropping what the learner typed."""
    from cnnlab.models import _DEFAULTS, shown

    ignored = []
    for i, row in enumerate(rows.to_dict("records")):
        kind = row.get("kind")
        if kind not in _DEFAULTS:
            continue  # blank or unknown: rows_spec explains those
        for column in LAYER_COLUMNS[1:]:
            value = row.get(column)
            # An unticked bias box is the column's blank, not something typed.
            if _empty(value) or value is False or _field(kind, column) in _DEFAULTS[kind]:
                continue
            name = "dropout p" if column == "p" else column
            ignored.append(f"layer {i + 1} ({kind}) has no {name}, so {shown(value)} is not used")
    return ignored


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
        placeholder="",  # an empty cell takes the layer's default: not "None"
        # A new key per preset resets the table when the preset changes.
        key=f"{key}.layers.{preset}",
        column_config={
            "kind": st.column_config.SelectboxColumn("layer", options=list(KINDS), required=True),
            # No bounds or steps on number cells: the browser would quietly change what is
            # typed (2.5 → 25, 1.5 → 0.99); the engine refuses a bad value in words instead.
            "out": st.column_config.NumberColumn(
                "out",
                help="filters (conv) or outputs (linear; empty = one per class)",
                format="plain",
            ),
            "kernel": st.column_config.NumberColumn("kernel", format="plain"),
            "stride": st.column_config.NumberColumn("stride", format="plain"),
            "padding": st.column_config.TextColumn("padding", help="a number, same or valid"),
            "dilation": st.column_config.NumberColumn("dilation", format="plain"),
            "groups": st.column_config.NumberColumn("groups", format="plain"),
            "p": st.column_config.NumberColumn(
                "dropout p", help="a probability in [0, 1)", format="plain"
            ),
            "bias": st.column_config.CheckboxColumn("bias", help="conv and linear layers"),
        },
    )
    if ignored := ignored_cells(edited):
        text = "; ".join(ignored)
        st.warning(text[:1].upper() + text[1:] + ".", icon=":material/warning:")
    return rows_spec(edited, preset if edited.equals(spec_rows(PRESETS[preset])) else "custom")


def summary_frame(summary: Any) -> pd.DataFrame:
    """The per-layer summary (output shape, parameters, FLOPs) as a table with a total row;
    layers numbered from 1 (as the layer table and its messages count them), numbers with
    thousands separators."""
    rows = [
        {
            "#": str(r.index + 1),
            "layer": r.description,
            "output shape": " × ".join(str(n) for n in r.output_shape),
            "parameters": f"{r.params:,}",
            "FLOPs / image": f"{r.flops:,}",
        }
        for r in summary
    ]
    rows.append(
        {
            "#": "",
            "layer": "total",
            "output shape": " × ".join(str(n) for n in summary.output_shape),
            "parameters": f"{summary.total_params:,}",
            "FLOPs / image": f"{summary.total_flops:,}",
        }
    )
    return pd.DataFrame(rows)


FLOPS_NOTE = (
    "FLOPs count one multiply-add as 2 floating-point operations (PyTorch's FlopCounterMode "
    "convention), for one image's forward pass; element-wise layers (ReLU, pooling, batch "
    "norm) are not counted. A training step costs about 3× the forward pass per image."
)


def show_summary(summary: Any) -> None:
    """The summary table, tall enough that its total row is always in view, and its FLOPs note."""
    frame = summary_frame(summary)
    st.dataframe(frame, hide_index=True, width="stretch", height=35 * (len(frame) + 1) + 3)
    st.caption(FLOPS_NOTE)


# -- hyper-parameters ---------------------------------------------------------------------------
# One line each: why a learner would touch the setting, and what it does to the curves.
WHY = {
    "epochs": "Passes over the training images. More epochs: more steps to learn, and past a "
    "point the validation loss turns up again (overfitting).",
    "batch_size": "Images per step. Each step updates the weights once: smaller batches mean "
    "more, noisier steps per epoch.",
    "lr": "How far each step moves the weights (the peak rate for onecycle). Too high: the "
    "loss jumps or explodes; too low: it falls slowly.",
    "optimizer": "How the gradient becomes a weight update: SGD follows it (with momentum "
    "0.9); Adam and AdamW scale each weight's step by its gradient history.",
    "schedule": "How the learning rate changes over the run: constant, cosine decay, or "
    "onecycle (warm up, then anneal): visible as the loss's pace changing.",
    "weight_decay": "Pulls every weight towards 0 each step: a regulariser that trades a "
    "slightly higher training loss for less overfitting.",
    "label_smoothing": "Trains towards softened targets (not 100 % on the true class). A "
    "regulariser: the training loss can no longer reach 0, so it stays above the validation "
    "loss.",
    "seed": "Fixes the initial weights, the validation split and the batch order: the same "
    "seed gives the same run.",
    "augment": "Trains on randomly shifted (and for photos mirrored) copies: harder training "
    "images, so the running training curves look worse than the validation ones.",
    "early_stopping_patience": "Stops when the validation loss has not improved for this many "
    "epochs, and keeps the best epoch's weights.",
}


# TrainConfig fields that have a widget, and that widget's key (after the page's prefix).
WIDGET_KEYS = {
    **{name: name for name in ("epochs", "batch_size", "lr", "optimizer", "schedule")},
    **{name: name for name in ("weight_decay", "label_smoothing", "seed", "augment")},
    "early_stopping_patience": "early_stopping",
}


def _apply_tuned(key: str, preset: str) -> None:
    """Set the widgets to ``preset``'s tuned settings, or back to the teaching defaults."""
    from cnnlab.training import TUNED_SETTINGS, TrainConfig

    tuned = st.session_state.get(f"{key}.tuned", False)
    base = TrainConfig().to_dict()
    for name, value in TUNED_SETTINGS.get(preset, {}).items():
        if name in WIDGET_KEYS:  # the others are applied by hyperparameters() itself
            st.session_state[f"{key}.{WIDGET_KEYS[name]}"] = value if tuned else base[name]


def _tuned_toggle(key: str, preset: str | None) -> None:
    """For a preset with benchmark-tuned settings, a toggle that puts them in the widgets."""
    from cnnlab.training import TUNED_SETTINGS

    tuned = TUNED_SETTINGS.get(preset or "", {})
    if not tuned:
        return
    listed = ", ".join(f"{name.replace('_', ' ')} {v}" for name, v in tuned.items())
    st.toggle(
        f"Use the settings tuned for the **{preset}** benchmark ({listed})",
        value=False,
        key=f"{key}.tuned",
        on_change=_apply_tuned,
        args=(key, preset),
        help="Tuned with benchmarks/train_speed.py for the most MNIST accuracy per second. "
        "Off: the teaching defaults, with no regularisation you cannot see.",
    )


def _settings_notes(values: dict[str, Any], num_classes: int | None) -> None:
    """What the chosen label smoothing does to the loss, and the settings with no widget."""
    from cnnlab.training import smoothing_floor

    if values["label_smoothing"] and num_classes:
        floor = smoothing_floor(float(values["label_smoothing"]), num_classes)
        st.caption(
            f"Label smoothing {values['label_smoothing']:g} over {num_classes} classes: the "
            f"training loss cannot fall below **{floor:.3f}** (the entropy of the softened "
            f"targets), while the validation loss is measured against the true labels."
        )
    st.caption(
        f"Fixed for every run: {float(values.get('val_fraction', 0.1)):.0%} of the training "
        f"images are held out to validate after each epoch; SGD uses Nesterov momentum "
        f"{values.get('momentum', 0.9)}; augmentation shifts by up to "
        f"{values.get('augment_shift', 2)} pixels."
    )


def hyperparameters(
    key: str, defaults: dict[str, Any], preset: str | None = None, num_classes: int | None = None
) -> dict[str, Any]:
    """Training settings as a dict of TrainConfig fields (starting from ``defaults``); every
    setting that changes the curves is a widget with its reason in the help, and a preset with
    benchmark-tuned settings offers them behind a labelled toggle."""
    from cnnlab.training import TUNED_SETTINGS

    values = dict(defaults)
    _tuned_toggle(key, preset)
    c1, c2, c3, c4 = st.columns(4)
    values["epochs"] = c1.number_input(
        "Epochs", 1, 50, int(defaults["epochs"]), key=f"{key}.epochs", help=WHY["epochs"]
    )
    values["batch_size"] = c2.select_slider(
        "Batch size",
        BATCH_SIZES,
        value=int(defaults["batch_size"]),
        key=f"{key}.batch_size",
        help=WHY["batch_size"],
    )
    values["lr"] = c3.number_input(
        "Learning rate",
        1e-5,
        1.0,
        float(defaults["lr"]),
        format="%.4f",
        step=1e-4,
        key=f"{key}.lr",
        help=WHY["lr"],
    )
    optimizers = ["sgd", "adam", "adamw"]
    values["optimizer"] = c4.selectbox(
        "Optimizer",
        optimizers,
        index=optimizers.index(defaults["optimizer"]),
        key=f"{key}.optimizer",
        help=WHY["optimizer"],
    )
    c1, c2, c3, c4 = st.columns(4)
    schedules = ["constant", "cosine", "onecycle"]
    values["schedule"] = c1.selectbox(
        "Learning-rate schedule",
        schedules,
        index=schedules.index(defaults["schedule"]),
        key=f"{key}.schedule",
        help=WHY["schedule"],
    )
    values["weight_decay"] = c2.number_input(
        "Weight decay",
        0.0,
        1.0,
        float(defaults["weight_decay"]),
        format="%.4f",
        step=1e-4,
        key=f"{key}.weight_decay",
        help=WHY["weight_decay"],
    )
    values["label_smoothing"] = c3.number_input(
        "Label smoothing",
        0.0,
        0.5,
        float(defaults["label_smoothing"]),
        step=0.05,
        key=f"{key}.label_smoothing",
        help=WHY["label_smoothing"],
    )
    values["seed"] = c4.number_input(
        "Seed", 0, 2**31 - 1, int(defaults["seed"]), key=f"{key}.seed", help=WHY["seed"]
    )
    c1, c2 = st.columns(2)
    if "augment" in defaults:
        values["augment"] = c1.toggle(
            "Augment (random shifts; flips for photos)",
            value=bool(defaults["augment"]),
            key=f"{key}.augment",
            help=WHY["augment"],
        )
    patience = c2.number_input(
        "Early stopping: patience in epochs (0 = off)",
        0,
        50,
        int(defaults.get("early_stopping_patience") or 0),
        key=f"{key}.early_stopping",
        help=WHY["early_stopping_patience"],
    )
    values["early_stopping_patience"] = int(patience) or None
    if st.session_state.get(f"{key}.tuned"):
        # Tuned settings without a widget: applied as tuned, and named by the toggle's label.
        tuned = TUNED_SETTINGS.get(preset or "", {})
        values.update({k: v for k, v in tuned.items() if k not in WIDGET_KEYS})
    _settings_notes(values, num_classes)
    # Tests (and a teacher's quick demo) can cap every run's steps server-wide.
    cap = os.environ.get("CNNLAB_MAX_STEPS")
    if cap and "max_steps" in defaults:
        values["max_steps"] = int(cap)
    return values


def small_data_warning(key: str, data: Any, config: dict[str, Any]) -> None:
    """Warn, with the numbers, when the settings give too few steps to learn, and offer
    settings that give enough."""
    from cnnlab.training import TrainConfig, small_data_advice, step_plan

    cfg = TrainConfig.from_dict(config)
    advice = small_data_advice(
        step_plan(len(data.train_y), cfg), cfg, len(data.classes), BATCH_SIZES
    )
    if advice is None:
        return
    st.warning(advice.message, icon=":material/warning:")
    st.button(
        f"Use batch {advice.batch_size} and {advice.epochs} epochs",
        key=f"{key}.fit_small_data",
        on_click=_set_widgets,
        args=({f"{key}.batch_size": advice.batch_size, f"{key}.epochs": advice.epochs},),
    )


def _set_widgets(values: dict[str, Any]) -> None:
    for name, value in values.items():
        st.session_state[name] = value


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


def curves_figure(
    series: list[tuple[str, dict[str, np.ndarray], list[Any]]],
    probes: list[np.ndarray | None] | None = None,
) -> go.Figure:
    """Loss and accuracy against epochs for one or more runs (train per step, validation per
    epoch); ``series`` holds (label, step curve, epoch records) per run, and ``probes`` (when
    given) each run's per-epoch (epoch, loss, accuracy) on training images in evaluation mode,
    drawn dotted: that one compares directly with validation."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"]
    probes = probes or [None] * len(series)
    for i, ((label, curve, epochs), probe) in enumerate(zip(series, probes, strict=True)):
        colour = palette[i % len(palette)]
        steps_per_epoch = _steps_per_epoch(curve)
        x = curve["step"] / steps_per_epoch if len(curve["step"]) else curve["step"]
        for col, metric in ((1, "loss"), (2, "accuracy")):
            xs, ys = downsample(x, curve[metric])
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    name=f"{label} train (running)".strip(),
                    legendgroup=label,
                    line={"color": colour, "width": 1.5},
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
            if probe is not None and len(probe):
                fig.add_trace(
                    go.Scatter(
                        x=probe[:, 0],
                        y=probe[:, col],
                        name=f"{label} train (eval mode)".strip(),
                        legendgroup=label,
                        mode="lines+markers",
                        line={"color": colour, "dash": "dot"},
                        marker={"symbol": "square"},
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
                        name=f"{label} validation".strip(),
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


def train_probe(store: RunStore, owner: str, run_id: str) -> np.ndarray | None:
    """The run's per-epoch (epoch, loss, accuracy) on training images in evaluation mode."""
    from cnnlab.worker import TRAIN_EVAL_ARRAY

    return store.get_array(owner, run_id, TRAIN_EVAL_ARRAY)


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
def current_run(store: RunStore, owner: str, key: str) -> Run | None:
    """The run this session watches: the one it started, else the owner's latest (so navigating
    away and back, or reloading, finds it again)."""
    run_id = st.session_state.get(key)
    if run_id:
        try:
            return store.get_run(owner, run_id)
        except KeyError:
            st.session_state.pop(key, None)
    runs = _train_runs(store, owner)
    active = [r for r in runs if r.active]
    return (active or runs or [None])[0]


def _train_runs(store: RunStore, owner: str) -> list[Run]:
    """The owner's runs of this page: the labs' experiments are shown on their own pages."""
    return [r for r in store.list_runs(owner) if not is_experiment(r.spec)]


def progress_panel(store: RunStore, sched: Scheduler, owner: str, run: Run) -> None:
    """Status, what the worker is doing before the first step, progress bar, images/s, ETA,
    queue position, curves (and how to read them), and the Stop or Resume button."""
    p = run.progress
    st.markdown(f"**{run.name or run.run_id}** · {STATUS_WORDS[run.status]} · {run.device or ''}")
    if run.status == "queued":
        est = sched.estimate(run.run_id)
        waiting = est is not None and est.wait_seconds != 0
        text = queue_text(est) if waiting else phase_text(run, time.time())
        st.info(text, icon=":material/hourglass_top:")
    elif run.status == "running" and "step" not in p:
        st.info(phase_text(run, time.time()), icon=":material/hourglass_top:")
    if "step" in p:
        done = p["step"] / max(1, p["total_steps"])
        st.progress(
            min(1.0, done),
            text=f"epoch {p['epoch']}/{p['epochs']} · step {p['step']:,}/{p['total_steps']:,}",
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
            curves_figure(
                [("", curve, store.epochs(owner, run.run_id))],
                [train_probe(store, owner, run.run_id)],
            ),
            key=f"train.curves.{run.run_id}",
        )
        st.caption(loss_note(run))
    if run.error:
        (st.warning if run.status in ("interrupted", "timed_out") else st.error)(run.error)
    if run.resumable:
        # Offered where the "resume it" message is, not only in the history.
        resume_button(sched, owner, run, "train.resume")


def resume_button(sched: Scheduler, owner: str, run: Run, key: str) -> None:
    """A button that queues the ended run again, to go on from its last checkpoint."""
    done = f"after epoch {run.checkpoint_epoch}" if run.checkpoint_epoch else "in its first epoch"
    if st.button(
        "Resume this run",
        icon=":material/replay:",
        key=key,
        help=f"Queue it again: it goes on from where it stopped ({done}), with the same settings.",
    ):
        try:
            sched.resume(owner, run.run_id, client_address())
            st.session_state["train.run_id"] = run.run_id
            st.rerun()
        except ValueError as exc:
            st.error(str(exc))


# What the worker does between taking a run and its first step, as it reports it.
PHASES = {
    "data": "Loading the data set",
    "model": "Building the network",
    "train": "Running the first training steps",
}


def phase_text(run: Run, now: float) -> str:
    """What an active run does before its first step is reported, and for how long so far."""
    if run.status == "queued":
        waited = "" if run.resume else f" ({duration_text(now - run.created_at)} so far)"
        return f"Waiting for a training worker to take the run…{waited}"
    phase = PHASES.get(run.progress.get("phase", ""), "Starting the training worker")
    # The worker's heartbeat is refreshed when it reports a phase: the phase began then.
    since = run.heartbeat_at or run.started_at or run.created_at
    return f"{phase}… ({duration_text(now - since)} so far)"


def loss_note(run: Run) -> str:
    """How the run's three kinds of curve were measured, so they can be compared."""
    cfg, kinds = run.config, {layer.get("kind") for layer in run.spec.get("layers", [])}
    during = ["the network in training mode"]
    if "dropout" in kinds:
        during.append("dropout on")
    if "batchnorm" in kinds or "residual" in kinds:
        during.append("batch norm using each batch's statistics")
    if cfg.get("augment"):
        during.append("shifted training images")
    if cfg.get("label_smoothing"):
        during.append(f"label smoothing {cfg['label_smoothing']:g}")
    note = (
        f"Train (running, solid): each batch's loss and accuracy as it trained — "
        f"{', '.join(during)} — while the weights were still changing within the epoch. "
        f"Train (eval mode, dotted) and validation (dashed): measured after each epoch the same "
        f"way, in evaluation mode (no dropout, fixed batch-norm statistics, original images, "
        f"true labels), on as many training images as held-out ones: those two compare "
        f"directly, and a gap between them is overfitting."
    )
    if cfg.get("label_smoothing"):
        note += " Label smoothing lifts only the running training loss."
    return note


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


def live_panel(store: RunStore, sched: Scheduler, owner: str, run_id: str) -> None:
    """The watched run: polled twice a second while it is active, results once it ended."""
    run = store.get_run(owner, run_id)
    # Only an active run polls: an idle page costs the server nothing.
    st.fragment(run_every=0.5 if run.active else None)(_live_body)(
        store, sched, owner, run_id, run.active
    )


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
    runs = _train_runs(store, owner)
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

"""Widgets of the "Train a CNN" page for setting a run up: the data set, the layers, the
hyper-parameters, the checks and the submission (``ui.run_progress`` shows the run while it trains,
``ui.run_results`` what it learned and the runs history).

Widgets return plain values; nothing here trains (training runs in a worker process, see
``cnnlab.jobs``): the page only submits jobs and reads the store.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from cnnlab import viz
from cnnlab.experiments import is_experiment
from cnnlab.jobs import Scheduler, get_scheduler, step_cap
from cnnlab.runs import Run, RunNotFoundError, RunStore, StoreUnavailableError, open_store
from ui import picture
from ui.image_source import cache_key
from ui.layer_rows import Stack
from ui.owner import owner_id

DATASETS = {
    "shapes": "Shapes (built in, no download)",
    "mnist": "MNIST handwritten digits",
    "fashion_mnist": "Fashion-MNIST clothing",
    "kmnist": "Kuzushiji-MNIST (Japanese characters)",
    "cifar10": "CIFAR-10 colour photos",
    "upload": "Your own images (a zip of class folders)",
}
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


def explain_store_errors(body: Callable[..., None]) -> Callable[..., None]:
    """``body`` showing a runs-store outage (its database down, or busy past its wait) as its
    one sentence instead of failing: a polling fragment tries again at its next run."""

    @functools.wraps(body)
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            body(*args, **kwargs)
        except StoreUnavailableError as error:
            st.error(str(error), icon=":material/cloud_off:")

    return guarded


def scheduler() -> Scheduler:
    """The server-wide job scheduler (started on first use), with a worker kept warm for the
    learner on this page (the first run then skips ~5 s of worker start-up) unless the server
    says not to (``CNNLAB_WARM_WORKER=0``)."""
    sched = get_scheduler()
    if sched.limits.warm_worker:
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
    return viz.upscale(viz.tile(to_rgb(images), columns=per_class, gap=2), 2)


@st.cache_resource(max_entries=16, show_spinner=False)
def _sample_strips(key: str, _picked: tuple[np.ndarray, ...], per_class: int) -> list[bytes]:
    """The strips of :func:`class_samples` as PNGs, once per server for the same pictures."""
    return [viz.png_bytes(_strip(images, per_class)) for images in _picked]


def to_rgb(images: np.ndarray) -> np.ndarray:
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
    picture.image(
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
    return layer_frame(rows)


def layer_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The layer table of rows (dicts by column name)."""
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


def _editor_key(key: str, preset: str) -> str:
    # A new key per preset resets the table when the preset changes; per link, when a link's
    # rows replace it.
    base = st.session_state.get(f"{key}.base")
    suffix = "" if base is None else f".{st.session_state.get(f'{key}.base_version', 0)}"
    return f"{key}.layers.{preset}{suffix}"


def _back_to_preset(key: str) -> None:
    """A preset was chosen: its rows replace the ones a link sent."""
    state = st.session_state
    state.pop(f"{key}.base", None)
    state[f"{key}.rows"] = state[f"{key}._rows_shown"] = ""


def _follow_link(key: str, link: Stack) -> None:
    """Start the editor on the rows under ``{key}.rows`` when something other than the editor
    set them (a link), or when Streamlit forgot the edits while another page was shown."""
    state = st.session_state
    wanted = state.get(f"{key}.rows")
    if wanted is None:
        return
    if wanted != state.get(f"{key}._rows_shown"):
        if wanted:
            state[f"{key}.base"] = link.to_rows(wanted)
            state[f"{key}.base_version"] = state.get(f"{key}.base_version", 0) + 1
        else:
            state.pop(f"{key}.base", None)
    elif wanted and _editor_key(key, state.get(f"{key}.preset", "fast")) not in state:
        state[f"{key}.base"] = link.to_rows(wanted)


def model_editor(key: str, link: Stack | None = None) -> Any:
    """Pick a preset and edit its layers in a table; returns the (unchecked) ModelSpec. With a
    ``link`` (held under ``{key}.rows``: "" while the rows are the preset's), the rows travel
    in the page's link."""
    from cnnlab.models import KINDS, PRESETS

    if link is not None:
        _follow_link(key, link)
    names = list(PRESETS)
    preset = st.selectbox(
        "Start from a preset",
        names,
        index=names.index("fast") if "fast" in names else 0,
        key=f"{key}.preset",
        on_change=_back_to_preset,
        args=(key,),
        help="fast: the default, tuned for speed. mnist_tutorial: PyTorch's classic example. "
        "lenet5: LeCun 1998. tiny_vgg: CNN Explainer's network. small_resnet: skip connections.",
    )
    base = st.session_state.get(f"{key}.base")
    start = spec_rows(PRESETS[preset]) if base is None else layer_frame(base)
    edited = st.data_editor(
        start,
        num_rows="dynamic",
        hide_index=False,
        width="stretch",
        placeholder="",  # an empty cell takes the layer's default: not "None"
        key=_editor_key(key, preset),
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
    unedited = edited.equals(spec_rows(PRESETS[preset]))
    if link is not None:  # nothing when a cell holds what a link cannot carry
        spelled = "" if unedited else link.of_rows(edited.to_dict("records"))
        st.session_state[f"{key}.rows"] = st.session_state[f"{key}._rows_shown"] = spelled
    return rows_spec(edited, preset if unedited else "custom")


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
    cap = step_cap()
    if cap and "max_steps" in defaults:
        values["max_steps"] = cap
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


# -- the owner's runs ---------------------------------------------------------------------------
def remembered_run(store: RunStore, owner: str, key: str) -> Run | None:
    """The run whose id this session keeps under ``key``, if it still exists (a deleted one is
    forgotten)."""
    run_id = st.session_state.get(key)
    if run_id:
        try:
            return store.get_run(owner, run_id)
        except RunNotFoundError:
            st.session_state.pop(key, None)
    return None


def current_run(store: RunStore, owner: str, key: str) -> Run | None:
    """The run this session watches: the one it started, else the owner's latest (so navigating
    away and back, or reloading, finds it again)."""
    if run := remembered_run(store, owner, key):
        return run
    runs = train_runs(store, owner)
    active = [r for r in runs if r.active]
    return (active or runs or [None])[0]


def train_runs(store: RunStore, owner: str) -> list[Run]:
    """The owner's runs of this page: the labs' experiments are shown on their own pages."""
    return [r for r in store.list_runs(owner) if not is_experiment(r.spec)]


# -- page glue: checks, submission --------------------------------------------------------------
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

"""A training run while it is queued or trains: its loss and accuracy curves, phase, queue
position and expected start, and the Resume button of an interrupted one (the Train page, the
runs history and the labs' experiments draw their curves with these)."""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from cnnlab.jobs import Scheduler
from cnnlab.queue_estimate import QueueEstimate
from cnnlab.runs import Run, RunStore
from ui import figure_text
from ui.client import client_address

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

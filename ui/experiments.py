"""The labs' experiments: a Train button that queues one, its live overlay chart, its results and
its share link. Nothing here trains: the experiment is a run in the worker queue
(:mod:`cnnlab.experiments`), and the page only reads the runs store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from cnnlab import experiments
from cnnlab.jobs import get_scheduler, step_cap
from cnnlab.runs import Run, RunNotFoundError
from cnnlab.wording import plural
from ui import figure_text, run_progress, training
from ui.client import client_address
from ui.owner import owner_id

SHARE_PARAM = "experiment"  # ?experiment=<run id> opens a shared experiment read-only
COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#f59e0b", "#9333ea", "#0891b2")
# Arms whose curves coincide (Adam and AdamW on a small network) must stay visible: each arm
# has its own dash and marker, and later arms are drawn thinner, on top of the earlier ones.
DASHES = ("solid", "dash", "dashdot", "longdash", "longdashdot", "6px,3px,2px,3px")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star")


def arm_style(i: int) -> tuple[dict, dict]:
    """The line and marker of arm ``i``: its colour, dash and a width and marker size that
    shrink arm by arm, so an arm drawn over an identical earlier one leaves it showing."""
    k = i % len(DASHES)
    line = {"color": COLOURS[i % len(COLOURS)], "dash": DASHES[k], "width": 4.5 - 0.75 * k}
    return line, {"symbol": SYMBOLS[k], "size": 14 - 1.75 * k, "maxdisplayed": 10}


SMOOTHING = 0.9  # exponential moving average of the per-step loss, bias-corrected


def smooth(values: np.ndarray, weight: float = SMOOTHING) -> np.ndarray:
    """Bias-corrected exponential moving average (what TensorBoard's smoothing slider does)."""
    out = np.empty(len(values))
    average = 0.0
    for i, value in enumerate(values):
        average = weight * average + (1 - weight) * value
        out[i] = average / (1 - weight ** (i + 1))
    return out


def _finite(values: np.ndarray) -> list[float | None]:
    # A diverged arm's loss leaves the finite numbers: a gap in its line, not a broken chart.
    return [float(v) if np.isfinite(v) else None for v in values]


def curves_figure(
    labels: Sequence[str], curves: list[tuple[np.ndarray, np.ndarray]], detector: bool = False
) -> go.Figure:
    """Every arm on one chart: training loss per step (left, smoothed, log scale) and accuracy
    per epoch (right: validation with markers, training dotted; for the detector, held-out
    mAP@0.5). Each arm has its own colour, dash and marker (:func:`arm_style`)."""
    right = "held-out mAP@0.5 per epoch" if detector else "accuracy per epoch"
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss (smoothed)", right))
    for i, (steps, epochs) in enumerate(curves):
        line, marker = arm_style(i)
        name = labels[i] if i < len(labels) else f"arm {i + 1}"
        if len(steps):
            loss = steps[:, 1].copy()
            loss[~np.isfinite(loss)] = np.nan
            finite = np.isfinite(loss)
            shown = np.where(finite, smooth(np.where(finite, loss, 0.0)), np.nan)
            x, y = run_progress.downsample(steps[:, 0], shown)
            fig.add_scatter(x=x, y=_finite(y), mode="lines+markers", name=name, line=line,
                            marker=marker, legendgroup=name, row=1, col=1)  # fmt: skip
        if len(epochs):
            fig.add_scatter(
                x=epochs[:, 0], y=_finite(epochs[:, 4]), mode="lines+markers", line=line,
                marker=marker, name=name, legendgroup=name, showlegend=not len(steps), row=1, col=2,
            )  # fmt: skip
            if not detector:
                fig.add_scatter(
                    x=epochs[:, 0], y=_finite(epochs[:, 2]), mode="lines",
                    line={**line, "dash": "dot", "width": 1.5}, name=f"{name} (train)",
                    legendgroup=name, showlegend=False, row=1, col=2,
                )  # fmt: skip
    fig.update_xaxes(title_text="step", row=1, col=1)
    fig.update_xaxes(title_text="epoch", dtick=1, row=1, col=2)
    if _spread(curves) > 50:  # an arm that blew up would flatten every other line
        fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.25})  # fmt: skip
    return fig


def _spread(curves: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Largest over smallest positive finite step loss of all arms (1 without any)."""
    losses = np.concatenate([steps[:, 1] for steps, _ in curves if len(steps)] or [np.ones(1)])
    losses = losses[np.isfinite(losses) & (losses > 0)]
    return float(losses.max() / losses.min()) if len(losses) else 1.0


def results_table(run: Run) -> pd.DataFrame:
    """Each arm's outcome in numbers: the chart's text alternative."""
    rows = []
    for arm in run.final.get("arms", []):
        pct = lambda v: "—" if v is None else f"{v:.1%}"  # noqa: E731
        rows.append(
            {
                "arm": arm["label"],
                "test accuracy": pct(arm["test_accuracy"]),
                "last validation accuracy": pct(arm["final_val_accuracy"]),
                "last training accuracy": pct(arm["final_train_accuracy"]),
                "steps": arm["steps"],
                "seconds": f"{arm['train_seconds']:.1f}",
                "stopped early at epoch": arm["best_epoch"] if arm["early_stopped"] else "",
            }
        )
    return pd.DataFrame(rows)


def _latest(store: Any, owner: str, names: Sequence[str]) -> Run | None:
    runs = [r for r in store.list_runs(owner) if r.spec.get("experiment") in names]
    active = [r for r in runs if r.active]
    return (active or runs or [None])[0]


def watched_run(store: Any, owner: str, key: str, names: Sequence[str]) -> Run | None:
    """The experiment this session watches on this lab: the one it queued, else the owner's
    latest of this lab's experiments (so a reload finds it again)."""
    return training.remembered_run(store, owner, key) or _latest(store, owner, names)


def launcher(
    key: str,
    names: Sequence[str],
    labels: dict[str, str] | None = None,
    render_result: Callable[[Any, Run, str | None], None] | None = None,
) -> None:
    """Seed, quick toggle (and which experiment, when the lab has several), the Train button,
    then the watched experiment, live while it trains."""
    store, owner = training.store_or_explain(), owner_id()
    if store is None:
        return
    cols = st.columns([3, 1, 1]) if len(names) > 1 else st.columns(2)
    name = names[0]
    if len(names) > 1:
        fmt = (labels or experiments.TITLES).get
        name = cols[0].selectbox("Experiment", names, format_func=fmt, key=f"{key}.name")
        cols = cols[1:]
    seed = int(cols[0].number_input("Seed", 0, experiments.MAX_SEED, 0, key=f"{key}.seed"))
    quick = cols[1].toggle("Quick", True, key=f"{key}.quick",
                           help="Fewer images and epochs: done within about a minute.")  # fmt: skip
    p = experiments.plan(name, seed, quick)
    arms = ", ".join(a.label for a in p.arms) or "one detector"
    st.caption(f"Trains {plural(len(p.arms) or 1, 'network')} one after another in the training "
               f"queue: {arms}; seed {seed}.")  # fmt: skip
    sched = get_scheduler()
    busy = bool(store.list_runs(owner, ("queued", "running")))
    if st.button("Train", key=f"{key}.start", type="primary", icon=":material/play_arrow:",
                 disabled=busy, help="One run per browser at a time: wait for yours or stop it."
                 if busy else None):  # fmt: skip
        try:
            st.session_state[f"{key}.run"] = experiments.submit(
                sched, owner, name, seed, quick, client_address(), max_steps=step_cap()
            )
        except ValueError as error:
            st.error(str(error), icon=":material/error:")
        else:
            st.rerun()  # draw the button disabled and start watching the queued run
    run = watched_run(store, owner, f"{key}.run", names)
    if run is None:
        st.info("Press **Train**: the curves appear here while the networks learn.")
        return
    st.fragment(run_every=0.5 if run.active else None)(_live)(
        store, owner, run.run_id, run.active, key, render_result
    )


def _live(
    store: Any,
    owner: str,
    run_id: str,
    was_active: bool,
    key: str,
    render_result: Callable[[Any, Run, str | None], None] | None,
) -> None:
    try:
        run = store.get_run(owner, run_id)
    except RunNotFoundError:
        st.info("This experiment was deleted.")
        return
    if was_active and not run.active:
        st.rerun()  # the whole page: re-enable Train, stop polling
    show(store, run, owner, key)
    if run.active and st.button("Stop", key=f"{key}.stop", icon=":material/stop:"):
        store.request_stop(owner, run.run_id)
        st.toast("Stopping after the current step…")
    if not run.active and run.final:
        if render_result is not None:
            render_result(store, run, owner)
        share(store, owner, run, key)


def show(store: Any, run: Run, owner: str | None, key: str) -> None:
    """Status, progress and the overlay chart of an experiment (``owner`` None: a shared one)."""
    st.markdown(f"**{run.name}** · {run_progress.STATUS_WORDS[run.status]}")
    p = run.progress
    if run.status == "queued":
        st.info(run_progress.queue_text(get_scheduler().estimate(run.run_id)),
                icon=":material/hourglass_top:")  # fmt: skip
    if run.active and p:
        label = f" ({p['label']})" if p.get("label") else ""
        st.progress(
            min(1.0, float(p["fraction"])),
            text=f"network {p['arm'] + 1} of {p['arms']}{label} · step {p['step']}/"
            f"{p['total_steps']}",
        )
    curves = experiments.curves(store, run, owner)
    detector = run.spec.get("experiment") == "detector"
    if curves:
        figure_text.plotly_chart(
            curves_figure(run.meta.get("arms", []), curves, detector),
            key=f"{key}.chart.{run.run_id}",
        )
    if run.error:
        (st.warning if run.status in ("stopped", "timed_out", "interrupted") else st.error)(
            run.error
        )
    if not run.active and run.final.get("arms"):
        st.dataframe(results_table(run), hide_index=True)
    if run.final:
        quick = "quick setting, " if run.final.get("quick") else ""
        lines = "" if detector else " Lines with markers: validation; thin dotted: training."
        st.caption(
            f"Seed **{run.final['seed']}** ({quick}{run.final['seconds']:.0f} s in the worker): "
            f"the same seed trains the same curves again.{lines}"
        )


def share(store: Any, owner: str, run: Run, key: str) -> None:
    """The owner's switch that opens the finished experiment to anyone with its link."""
    shared = st.toggle("Share with my class", bool(run.meta.get("shared")),
                       key=f"{key}.share.{run.run_id}",
                       help="Anyone with the link can look at this experiment (not change "
                       "it); switch off to close the link again.")  # fmt: skip
    if shared != bool(run.meta.get("shared")):
        store.set_shared(owner, run.run_id, shared)
    if shared:
        st.code(share_link(run.run_id), language=None)


def share_link(run_id: str) -> str:
    """This page's address with the run id: what the class opens."""
    url = str(st.context.url or "") if hasattr(st.context, "url") else ""
    base = url.split("?", 1)[0]
    return f"{base}?{SHARE_PARAM}={run_id}"


def shared_view(
    names: Sequence[str], key: str, render_result: Callable[[Any, Run, str | None], None] | None
) -> bool:
    """The shared experiment named in the address, read-only; True when one was shown."""
    run_id = st.query_params.get(SHARE_PARAM)
    if not run_id:
        return False
    store = training.store_or_explain()
    if store is None:
        return False
    try:
        run = store.get_shared_run(str(run_id))
    except RunNotFoundError:
        run = None
    if run is None or run.spec.get("experiment") not in names:
        st.warning("This link opens no shared experiment of this lab: its owner may have "
                   "stopped sharing it.", icon=":material/link_off:")  # fmt: skip
        return False
    with st.container(border=True):
        st.subheader("Shared experiment")
        show(store, run, None, f"{key}.shared")
        if render_result is not None and not run.active and run.final:
            render_result(store, run, None)
    return True

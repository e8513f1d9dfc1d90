"""Train a CNN: choose data and layers, train in a background worker, watch it learn live."""

from __future__ import annotations

import streamlit as st

from cnnlab.device import describe_device
from cnnlab.export import export_script
from cnnlab.uploads import UPLOAD
from cnnlab.wording import plural
from ui import run_results
from ui import training as ui
from ui.client import client_address
from ui.navigation import ensure_app_navigation
from ui.owner import owner_id
from ui.page_links import TRAIN_STACK

ensure_app_navigation()

st.title("Train a CNN")
st.markdown(
    "Design a small convolutional network, train it on real images and watch it learn. Training "
    "runs in a separate worker process on the server, so you can leave this page and come back: "
    "your run keeps going, and every run is kept in your history."
)
owner = owner_id()
client = client_address()
store = ui.store_or_explain()
if store is None:
    st.stop()  # nothing on this page works without the runs store: no queue, no history
sched = ui.scheduler()
train_tab, history_tab = st.tabs(["Train", "Runs history"])

with train_tab:
    st.subheader("1 · Data")
    dataset, limit = ui.dataset_picker("train.data")
    data, data_options = None, {}
    try:
        if dataset == UPLOAD:
            data, data_options = ui.uploaded_data("train.data", limit)
        else:
            data, data_options = ui.load_data(dataset, limit), {"limit": limit} if limit else {}
    except ValueError as exc:
        st.error(str(exc), icon=":material/error:")
    if data is not None:
        n_train, n_test = len(data.train_y), len(data.test_y)
        c, h, w = data.train_x.shape[1:]
        if dataset == UPLOAD:
            st.markdown(f"Classes found: {ui.class_counts(data)}")
        st.caption(
            f"{n_train:,} training and {n_test:,} test images of {c}×{h}×{w}, "
            f"{len(data.classes)} classes. A few per class:"
        )
        ui.show_samples(data)

    st.subheader("2 · Model")
    spec, summary, problem = None, None, None
    try:
        spec = ui.model_editor("train.model", TRAIN_STACK)
        if data is not None:
            summary = ui.summarize_model(spec, data)
    except ValueError as exc:
        problem = str(exc)
        st.error(problem)
    if summary is not None:
        ui.show_summary(summary)

    st.subheader("3 · Training settings")
    config = ui.hyperparameters(
        "train.hp",
        ui.default_config(),
        preset=st.session_state.get("train.model.preset"),
        num_classes=None if data is None else len(data.classes),
    )
    if data is not None:
        ui.small_data_warning("train.hp", data, config)
    st.caption(f"Training runs on: **{describe_device().label}** (one worker thread per run).")
    if summary is not None:
        try:
            estimate = ui.check_model_limits(spec, data, config["batch_size"], sched)
            st.caption(f"Memory for one training step: about {estimate}.")
        except ValueError as exc:
            problem = str(exc)
            st.error(problem)

    run = ui.current_run(store, owner, "train.run_id")
    busy = len(store.list_runs(owner, ("queued", "running"))) >= sched.limits.max_per_owner
    training = busy and run is not None and run.active
    if st.button(
        "Training…" if training else "Train",
        type="primary",
        icon=":material/hourglass_top:" if training else ":material/play_arrow:",
        key="train.start",
        disabled=busy or problem is not None or data is None,
        help=f"You can have {plural(sched.limits.max_per_owner, 'run')} queued or training at a "
        "time."
        if busy
        else None,
    ):
        try:
            st.session_state["train.run_id"] = ui.submit(
                sched, owner, dataset, data_options, spec, data, config, client
            )
            # Draw the page again at once: Train turns into a disabled "Training…" now, not
            # when the live panel's fragment next reruns the whole page.
            st.rerun()
        except ValueError as exc:
            st.error(str(exc))

    st.subheader("4 · Watch it learn")
    if run is None:
        st.info("Press **Train** to start; the curves appear here as the network learns.")
    else:
        run_results.live_panel(store, sched, owner, run.run_id)

with history_tab:
    # A fragment: comparing or picking runs there changes nothing on the Train tab.
    st.fragment(run_results.history)(store, sched, owner, export_script)

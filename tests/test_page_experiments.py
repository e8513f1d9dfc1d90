"""AppTest of the labs' experiments: Train queues a run (no training in the page), the worker's
curves and results appear, the seed is shown, and a shared run opens for another browser while
an unshared one never does."""

from __future__ import annotations

import pytest
from pagetest import app_test
from test_experiments import tiny

from cnnlab import experiments, jobs, single_shot, worker
from cnnlab.runs import SqliteRunStore, default_data_dir


@pytest.fixture(autouse=True)
def _no_workers(monkeypatch):
    """The page only queues; the test plays the worker, in-process and on tiny settings."""
    monkeypatch.setenv("CNNLAB_EXTERNAL_WORKERS", "1")
    monkeypatch.setattr(experiments, "plan_of", lambda spec: tiny(experiments.plan(
        spec["experiment"], spec["seed"], spec["quick"])))  # fmt: skip
    monkeypatch.setattr(single_shot, "QUICK", single_shot.DetectorSettings(
        train_canvases=16, held_out_canvases=6, epochs=1, batch_size=8))  # fmt: skip
    yield
    jobs.shutdown_scheduler()


def _page(script: str, **state):
    at = app_test(script, timeout=300)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _train(at, key: str):
    """Press Train, then let the 'worker' train the queued run; returns the run as stored."""
    at.button(key=f"{key}.start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    store = SqliteRunStore(default_data_dir())
    (queued,) = store.queue()
    assert at.button(key=f"{key}.start").disabled  # one active run per browser
    assert any("queued" in m.value for m in at.markdown)
    run = worker.execute(store, queued.run_id)
    assert run.status == "finished", run.error
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return run


def test_choices_trains_an_experiment_in_the_queue_and_shares_it():
    at = _page("pages/choices.py", **{"ch.steps": 20, "ch.lr_steps": 30})
    at.selectbox(key="ch.exp.name").set_value("losses")
    at.number_input(key="ch.exp.seed").set_value(7)
    at.run()
    run = _train(at, "ch.exp")
    assert run.spec == {"experiment": "losses", "seed": 7, "quick": True}
    table = at.dataframe[-1].value
    assert table["arm"].tolist() == ["cross-entropy", "binary cross-entropy", "MSE"]
    assert table["test accuracy"].tolist() == [
        f"{a['test_accuracy']:.1%}" for a in run.final["arms"]
    ]
    assert any("Seed **7**" in c.value for c in at.caption)
    assert not at.button(key="ch.exp.start").disabled

    # Not shared yet: another browser's link opens nothing.
    other = app_test("pages/choices.py", timeout=300)
    other.query_params["experiment"] = run.run_id
    other.session_state["ch.steps"] = 20
    other.run()
    assert not other.exception
    assert any("opens no shared experiment" in w.value for w in other.warning)
    assert not any(s.value == "Shared experiment" for s in other.subheader)

    at.toggle(key=f"ch.exp.share.{run.run_id}").set_value(True).run()
    assert at.code[-1].value.endswith(f"?experiment={run.run_id}")
    other.run()
    assert any(s.value == "Shared experiment" for s in other.subheader)
    assert other.dataframe[0].value["arm"].tolist() == table["arm"].tolist()
    assert other.get("plotly_chart")


def test_residual_trains_the_four_networks_side_by_side():
    at = _page("pages/residual.py", **{"res.depth": 6, "res.steps": 0})
    charts = len(at.get("plotly_chart"))
    run = _train(at, "res.exp")
    assert at.dataframe[-1].value["arm"].tolist() == [
        "plain", "plain + BN", "residual", "residual + BN"]  # fmt: skip
    assert len(at.get("plotly_chart")) == charts + 1
    assert run.final["seed"] == 0


def test_detection_trains_a_single_shot_detector_and_reports_held_out_map():
    at = _page("pages/detection.py")
    run = _train(at, "det.exp")
    metric = next(m for m in at.metric if m.label == "mAP@0.5 on held-out canvases")
    assert metric.value == f"{run.final['map50']:.3f}"
    table = at.dataframe[-1].value
    assert list(table.columns) == ["x1", "y1", "x2", "y2", "label", "confidence"]
    assert len(at.get("imgs")) or at.get("image")


def test_the_train_page_leaves_the_labs_experiments_to_their_labs():
    from test_experiments import _Sched

    store, owner = SqliteRunStore(default_data_dir()), "f" * 32
    run = worker.execute(store, experiments.submit(_Sched(store), owner, "losses", 0, True))
    assert run.status == "finished"
    at = _page("pages/train.py", **{"owner.id": owner})
    assert any("Press **Train** to start" in i.value for i in at.info)
    assert any("No runs yet" in i.value for i in at.info)


def test_arms_with_the_same_curves_stay_distinguishable():
    """Adam and AdamW can coincide: each arm's line has its own dash, width and marker."""
    import numpy as np

    from ui.experiments import curves_figure

    steps = np.array([[s, 2.0 / (s + 1)] for s in range(10)])
    epochs = np.array([[e, 0, 0.5 + e / 10, 0, 0.6 + e / 10] for e in range(1, 4)])
    arms = ["sgd", "adam", "adamw"]
    figure = curves_figure(arms, [(steps, epochs)] * 3)
    loss = [t for t in figure.data if t.xaxis == "x"]
    validation = [t for t in figure.data if t.xaxis == "x2" and t.mode == "lines+markers"]
    assert len({t.line.dash for t in loss}) == len({t.marker.symbol for t in validation}) == 3
    assert [t.marker.symbol for t in loss] == [t.marker.symbol for t in validation]
    sizes = [t.marker.size for t in loss]  # an identical earlier arm's larger marker shows
    assert sizes == sorted(set(sizes), reverse=True)
    widths = [t.line.width for t in loss]
    assert widths == sorted(set(widths), reverse=True), "later arms drawn thinner, on top"


def test_the_progress_of_a_training_experiment_is_shown_while_it_trains(monkeypatch):
    """Mid-run, as the page polls: which network of how many, its label and its step (the
    browser test cannot be sure to see this: a quick experiment may finish between two polls)."""
    at = _page("pages/choices.py", **{"ch.steps": 20, "ch.lr_steps": 30})
    at.selectbox(key="ch.exp.name").set_value("losses")
    at.run()
    at.button(key="ch.exp.start").click().run()
    store = SqliteRunStore(default_data_dir())
    (queued,) = store.queue()
    seen: list[tuple[str, float]] = []
    record = experiments._Recorder.__call__

    def record_then_look(self, arm, steps, epochs, progress):
        record(self, arm, steps, epochs, progress)
        # The second network's last step (always recorded; earlier ones may be thinned out).
        if arm == 1 and progress is not None and progress.step == progress.total_steps:
            at.run()
            assert not at.exception, [e.value for e in at.exception]
            seen.extend((bar.proto.text, bar.proto.value) for bar in at.get("progress"))

    monkeypatch.setattr(experiments._Recorder, "__call__", record_then_look)
    assert worker.execute(store, queued.run_id).status == "finished"
    ((text, value),) = seen
    assert text == "network 2 of 3 (binary cross-entropy) · step 3/3"  # tiny(): three steps
    assert value == 66  # percent: two networks of three done

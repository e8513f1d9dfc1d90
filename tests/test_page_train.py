"""AppTest of the Train page: configure, train a tiny network in a real worker, see the live
curves and the result views, stop a run mid-way, and find it all in the history."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from pagetest import app_test

from cnnlab import jobs
from ui.run_progress import downsample, duration_text
from ui.training import class_samples, rows_spec, spec_rows, store


@pytest.fixture(autouse=True)
def _scheduler():
    yield
    jobs.shutdown_scheduler()


def _page(limit: int = 300, epochs: int = 2):
    at = app_test("pages/train.py", timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="train.data.limit").set_value(limit)
    at.number_input(key="train.hp.epochs").set_value(epochs)
    at.select_slider(key="train.hp.batch_size").set_value(32)
    return at.run()


def _rerun_until(at, done, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if done(at):
            return at
        time.sleep(0.3)
    raise AssertionError(f"page never got there; markdown: {[m.value for m in at.markdown]}")


def _status(at) -> str:
    return " ".join(m.value for m in at.markdown)


def test_train_a_tiny_network_and_see_the_results():
    at = _page()
    assert at.dataframe, "the layer summary table is shown"
    at.button(key="train.start").click().run()
    assert not at.exception
    at = _rerun_until(at, lambda a: "finished" in _status(a))
    assert at.button(key="train.start").disabled is False
    labels = [m.label for m in at.metric]
    assert "Test accuracy" in labels
    accuracy = next(m.value for m in at.metric if m.label == "Test accuracy")
    assert accuracy.endswith("%")
    charts = at.get("plotly_chart")
    assert len(charts) >= 3  # curves, per-class accuracy, confusion matrix
    # The curves: running train loss, and per epoch train (eval mode) beside validation.
    names = [t.get("name") for t in json.loads(charts[0].proto.spec)["data"]]
    assert {"train (running)", "train (eval mode)", "validation"} <= set(names), names
    assert at.select_slider(key="train.result.kernel_epoch").options == ["0", "1", "2"]
    at.select_slider(key="train.result.kernel_epoch").set_value(0).run()
    assert not at.exception
    # Deeper kernels are named as the layer table numbers layers (the fast preset's 2nd conv).
    assert at.selectbox(key="train.result.deeper").options == ["Layer 4 (conv)"]
    # The run is in the history, with its downloads.
    assert at.selectbox(key="train.history.run").value
    assert at.get("download_button")


def test_stop_a_run_mid_way():
    at = _page(limit=3000, epochs=40)
    at.number_input(key="train.hp.early_stopping").set_value(3).run()
    at.button(key="train.start").click().run()
    # At once, not when the live panel next reruns the page: one run at a time.
    assert at.button(key="train.start").disabled
    assert at.button(key="train.start").label == "Training…"
    run = store().get_run(at.session_state["owner.id"], at.session_state["train.run_id"])
    assert run.config["early_stopping_patience"] == 3
    at = _rerun_until(at, lambda a: any(m.label == "Images / s" for m in a.metric))
    at.button(key="train.stop").click().run()
    at = _rerun_until(at, lambda a: "stopped" in _status(a))
    assert not at.exception


@pytest.mark.parametrize("warm", ["1", "0"])
def test_opening_the_page_starts_a_worker_for_the_first_run_unless_told_not_to(monkeypatch, warm):
    monkeypatch.setenv("CNNLAB_WARM_WORKER", warm)
    _page()
    assert len(jobs.get_scheduler().running_workers()) == int(warm)


def test_a_model_too_big_for_the_server_is_explained_before_training(monkeypatch):
    monkeypatch.setenv("CNNLAB_MAX_PARAMS", "1000")
    at = _page()
    assert any("parameters; this server allows at most 1,000" in e.value for e in at.error)
    assert at.button(key="train.start").disabled
    assert at.dataframe, "the summary table still shows what the model is"


def test_layer_table_round_trips_every_preset():
    from cnnlab.models import PRESETS, build_model

    for name, spec in PRESETS.items():
        again = rows_spec(spec_rows(spec), name)
        assert [(la.kind, la.resolved()) for la in again.layers] == [
            (la.kind, la.resolved()) for la in spec.layers
        ], name
        build_model(again, (1, 28, 28), 10)


def test_layer_table_explains_bad_cells():
    from cnnlab.models import PRESETS, SpecError

    rows = spec_rows(PRESETS["fast"])
    rows.loc[1, "kernel"] = 2.5  # row 1 is layer 1, as the table numbers it
    with pytest.raises(SpecError, match=r"Layer 1 .*whole number"):
        rows_spec(rows, "custom")


def test_downsample_keeps_the_mean_and_the_span():
    x = np.arange(10_000, dtype=float)
    y = np.sin(x / 500)
    xs, ys = downsample(x, y, 100)
    assert len(xs) == 100
    assert xs[0] == pytest.approx(x[:100].mean())
    assert ys.mean() == pytest.approx(y.mean())
    assert downsample(x[:50], y[:50], 100)[0].tolist() == x[:50].tolist()


def test_class_samples_show_each_class():
    x = np.zeros((30, 1, 4, 4), np.uint8)
    y = np.repeat(np.arange(3), 10)
    x[y == 1] = 255
    strips = class_samples(x, y, per_class=2)
    assert len(strips) == 3
    assert strips[0].shape == (8, 2 * 8 + 2 * 2, 3)  # 2 images of 4 px, gap 2, upscaled ×2
    assert strips[1][0, 0].tolist() == [255, 255, 255]
    assert strips[0][0, 0].tolist() == [0, 0, 0]


def test_a_subset_smaller_than_the_classes_shows_its_samples_and_names_the_missing():
    at = app_test("pages/train.py", timeout=120).run()
    at.number_input(key="train.data.limit").set_value(1).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("No training images of" in c.value for c in at.caption)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0.0 s"), (0.84, "0.8 s"), (9.94, "9.9 s"), (9.96, "10 s"), (42.4, "42 s"),
     (59.6, "1 min 00 s"), (185.0, "3 min 05 s"), (-1.0, "0.0 s")],
)  # fmt: skip
def test_durations_keep_tenths_below_ten_seconds(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_a_cell_the_layer_kind_does_not_use_is_named_on_the_page():
    from cnnlab.models import PRESETS

    at = app_test("pages/train.py", timeout=120).run()
    preset = at.selectbox(key="train.model.preset").value
    relu = [layer.kind for layer in PRESETS[preset].layers].index("relu")
    edits = {"edited_rows": {relu: {"p": 0.5}}, "added_rows": [], "deleted_rows": []}
    at.session_state[f"train.model.layers.{preset}"] = edits
    at.run()
    assert not at.exception
    expected = f"Layer {relu + 1} (relu) has no dropout p, so 0.5 is not used."
    assert any(w.value == expected for w in at.warning), [w.value for w in at.warning]

"""AppTest of the Train page as a teacher would check it: defaults that hide no regularisation
(tuned settings only behind a labelled toggle), every setting explained, a summary whose
numbers read well, a small upload warned about with its numbers, the Resume button beside the
"resume it" message, and what the worker does before the first step."""

from __future__ import annotations

import time

import pytest
import torch
from class_zip import class_zip
from pagetest import app_test

from cnnlab import jobs
from cnnlab.models import PRESETS
from cnnlab.runs import Run, SqliteRunStore, default_data_dir
from cnnlab.training import TUNED_SETTINGS, TrainConfig, smoothing_floor
from ui.run_progress import loss_note, phase_text
from ui.run_results import weight_label
from ui.training import WIDGET_KEYS, load_data

OWNER = "e" * 32  # a valid owner id, as the browser's cookie would bring


@pytest.fixture(autouse=True)
def _no_workers(monkeypatch):
    # Nothing here trains: runs stay where the test puts them.
    monkeypatch.setenv("CNNLAB_EXTERNAL_WORKERS", "1")
    yield
    jobs.shutdown_scheduler()


def _page(limit: int = 300):
    at = app_test("pages/train.py", timeout=120)
    at.session_state["owner.id"] = OWNER
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="train.data.limit").set_value(limit).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_defaults_hide_no_regularisation_and_tuned_settings_are_labelled():
    at = _page()
    assert at.number_input(key="train.hp.label_smoothing").value == 0.0
    for key in ("epochs", "lr", "weight_decay", "label_smoothing", "seed", "early_stopping"):
        assert at.number_input(key=f"train.hp.{key}").help, key
    for key in ("optimizer", "schedule"):
        assert at.selectbox(key=f"train.hp.{key}").help, key
    assert at.select_slider(key="train.hp.batch_size").help
    assert at.toggle(key="train.hp.augment").help
    assert any("held out to validate after each epoch" in c.value for c in at.caption)
    # The fast preset's benchmark settings: offered, named, and undone by the same toggle.
    tuned = TUNED_SETTINGS["fast"]
    toggle = at.toggle(key="train.hp.tuned")
    assert "tuned for the **fast** benchmark (" in toggle.label
    assert f"label smoothing {tuned['label_smoothing']}" in toggle.label
    toggle.set_value(True).run()
    shown = {name: value for name, value in tuned.items() if name in WIDGET_KEYS}
    assert shown, "the tuned settings should include at least one with a widget"
    assert {name: at.session_state[f"train.hp.{WIDGET_KEYS[name]}"] for name in shown} == shown
    floor = f"{smoothing_floor(tuned['label_smoothing'], 10):.3f}"
    assert any(f"cannot fall below **{floor}**" in c.value for c in at.caption)
    at.toggle(key="train.hp.tuned").set_value(False).run()
    assert at.number_input(key="train.hp.label_smoothing").value == 0.0
    assert not any("cannot fall below" in c.value for c in at.caption)


def test_every_tuned_setting_reaches_the_run_widget_or_not(monkeypatch):
    tuned = {"label_smoothing": 0.2, "early_stopping_patience": 2, "augment_shift": 1}
    monkeypatch.setitem(TUNED_SETTINGS, "fast", tuned)
    at = _page()
    at.toggle(key="train.hp.tuned").set_value(True).run()
    assert at.number_input(key="train.hp.early_stopping").value == 2
    at.button(key="train.start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    run = SqliteRunStore(default_data_dir()).list_runs(OWNER)[0]
    assert {name: run.config[name] for name in tuned} == tuned


def test_the_summary_numbers_read_well_and_state_the_flops_convention():
    at = _page()
    table = next(d.value for d in at.dataframe if "FLOPs / image" in d.value.columns)
    assert table["#"].tolist()[:2] == ["1", "2"]
    total = table.iloc[-1]
    assert (total["#"], total["layer"]) == ("", "total")
    params = int(total["parameters"].replace(",", ""))
    assert params == sum(int(p.replace(",", "")) for p in table["parameters"][:-1])
    assert "," in total["FLOPs / image"]  # thousands separators
    # The stated convention, by hand: PyTorch's tutorial net starts with a 3×3 conv of 32
    # filters on 1×28×28 ("same" padding) -> 32 × 28 × 28 outputs of 9 multiply-adds each.
    at.selectbox(key="train.model.preset").set_value("mnist_tutorial").run()
    table = next(d.value for d in at.dataframe if "FLOPs / image" in d.value.columns)
    assert table["output shape"][0] == "32 × 28 × 28"
    assert table["FLOPs / image"][0] == f"{2 * 32 * 28 * 28 * 9:,}"
    assert any("one multiply-add as 2 floating-point operations" in c.value for c in at.caption)


def test_a_small_upload_is_warned_about_and_fixed_in_one_click():
    at = app_test("pages/train.py", timeout=120).run()
    at.selectbox(key="train.data.name").set_value("upload").run()
    data = class_zip(("a", "b", "c"), per_class=20)
    at.file_uploader(key="train.data.zip").set_value(("small.zip", data, "application/zip")).run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="train.hp.epochs").set_value(10).run()
    warnings = [w.value for w in at.warning]
    assert any(
        w.startswith(
            "43 training images, batch 64: 1 step per epoch, 10 steps in total — too few: "
            "expect the network to stay near chance (33%)"
        )
        for w in warnings
    ), warnings
    at.button(key="train.hp.fit_small_data").click().run()
    assert at.select_slider(key="train.hp.batch_size").value == 4
    assert at.number_input(key="train.hp.epochs").value == 10
    assert not any("training images, batch" in w.value for w in at.warning)


def _interrupted_run(store: SqliteRunStore) -> str:
    run_id = store.create_run(
        OWNER, dataset="shapes", config=TrainConfig().to_dict(), spec=PRESETS["fast"].to_dict()
    )
    store.update_status(run_id, "running", started_at=time.time())
    store.save_checkpoint(run_id, 1, {"model": {"w": torch.zeros(1)}, "epoch": 1})
    store.finish(
        run_id, "interrupted", error="The server stopped while this run was training; resume it."
    )
    return run_id


def test_resume_is_offered_beside_the_message_that_asks_for_it():
    store = SqliteRunStore(default_data_dir())
    run_id = _interrupted_run(store)
    at = _page()
    assert any("resume it" in w.value for w in at.warning)
    button = at.button(key="train.resume")
    assert "after epoch 1" in button.help
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert store.load_run(run_id).status == "queued"
    # Queued again: the Train button says so and waits.
    assert at.button(key="train.start").label == "Training…"
    assert at.button(key="train.start").disabled


def _run(**kw) -> Run:
    base = {
        "run_id": "r1", "owner": OWNER, "status": "running", "dataset": "shapes",
        "config": TrainConfig().to_dict(), "spec": PRESETS["fast"].to_dict(), "created_at": 100.0,
    }  # fmt: skip
    return Run(**{**base, **kw})


def test_the_phase_before_the_first_step_is_named_with_its_time():
    # The worker refreshes the heartbeat as it reports a phase: the phase's clock starts there.
    data = _run(started_at=110.0, heartbeat_at=111.0, progress={"phase": "data"})
    assert phase_text(data, 114.0) == "Loading the data set… (3.0 s so far)"
    model = _run(started_at=110.0, heartbeat_at=112.5, progress={"phase": "model"})
    assert phase_text(model, 113.0) == "Building the network… (0.5 s so far)"
    first = _run(started_at=110.0, heartbeat_at=113.0, progress={"phase": "train"})
    assert phase_text(first, 128.0) == "Running the first training steps… (15 s so far)"
    assert (
        phase_text(_run(started_at=110.0), 111.5) == "Starting the training worker… (1.5 s so far)"
    )
    queued = _run(status="queued")
    assert (
        phase_text(queued, 102.0) == "Waiting for a training worker to take the run… (2.0 s so far)"
    )


def test_the_curves_note_says_how_each_loss_was_measured():
    plain = loss_note(_run())
    assert "batch norm using each batch's statistics" in plain  # the fast preset has BN
    assert "dropout on" not in plain
    assert "those two compare directly" in plain
    dropout = {"layers": [{"kind": "flatten"}, {"kind": "dropout"}, {"kind": "linear"}]}
    config = {**TrainConfig().to_dict(), "label_smoothing": 0.3, "augment": True}
    smoothed = loss_note(_run(config=config, spec=dropout))
    assert "dropout on, shifted training images, label smoothing 0.3" in smoothed
    assert "lifts only the running training loss" in smoothed


def test_weights_are_named_as_the_layer_table_counts_layers():
    spec = PRESETS["small_resnet"].to_dict()
    kinds = [layer["kind"] for layer in spec["layers"]]
    conv = kinds.index("conv")
    assert weight_label(f"{conv}.weight", spec) == f"Layer {conv + 1} (conv)"
    block = kinds.index("residual")
    assert weight_label(f"{block}.conv1.weight", spec) == f"Layer {block + 1} (residual) · conv1"
    assert weight_label("99.weight", spec) == "99.weight"


def _offline_mnist(monkeypatch):
    from cnnlab import data as data_module

    source = data_module.SOURCES["mnist"]
    offline = data_module._Source("http://127.0.0.1:9/", source.files, source.classes, False)
    monkeypatch.setitem(data_module.SOURCES, "mnist", offline)


def test_an_offline_server_explains_where_to_put_the_files(monkeypatch, tmp_path):
    _offline_mnist(monkeypatch)
    monkeypatch.setenv("CNNLAB_DATASETS_DIR", str(tmp_path / "sets"))
    at = _page()
    at.selectbox(key="train.data.name").set_value("mnist").run()
    assert not at.exception, [e.value for e in at.exception]
    errors = " ".join(e.value for e in at.error)
    assert "Could not download mnist: this server cannot reach 127.0.0.1" in errors
    assert f"{tmp_path / 'sets'}/mnist" in errors
    assert "urllib3" not in errors
    assert at.button(key="train.start").disabled


def test_the_servers_test_files_alone_are_enough(monkeypatch, tmp_path):
    from test_data import write_mnist_folder

    _offline_mnist(monkeypatch)
    (tmp_path / "sets" / "mnist").mkdir(parents=True)
    write_mnist_folder(tmp_path / "sets" / "mnist", 0, 50)
    monkeypatch.setenv("CNNLAB_DATASETS_DIR", str(tmp_path / "sets"))
    at = _page(limit=0)
    try:
        at.selectbox(key="train.data.name").set_value("mnist").run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        assert any("40 training and 10 test images of 1×28×28" in c.value for c in at.caption)
    finally:
        load_data.clear()  # the server-wide cache must not hand this tiny MNIST to other tests

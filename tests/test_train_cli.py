"""The command line trains headless, records the run, and ends with one JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.models import PRESETS
from cnnlab.runs import SqliteRunStore
from cnnlab.train import build_config, main, parse_args
from cnnlab.training import TUNED_SETTINGS
from cnnlab.worker import TRAIN_EVAL_ARRAY, execute

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(_isolated_data_dir: Path) -> Path:
    """The per-test CNNLAB_DATA_DIR that tests/conftest.py sets."""
    return _isolated_data_dir


def test_cli_trains_a_few_steps_and_ends_with_one_json_line(data_dir):
    out = subprocess.run(
        [sys.executable, "-m", "cnnlab.train", "--preset", "fast", "--dataset", "shapes",
         "--limit", "300", "--epochs", "2", "--batch-size", "32", "--max-steps", "10",
         "--threads", "1", "--seed", "3"],
        cwd=ROOT, env={**os.environ}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert {"test_accuracy", "train_seconds", "images_per_second", "device", "run_id"} <= set(
        result
    )
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert result["images_per_second"] > 0
    assert any(line.startswith("epoch 1/2 step") for line in lines[:-1])
    # The run is recorded in the store under the "cli" owner, with every step.
    run = SqliteRunStore(data_dir).get_run("cli", result["run_id"])
    assert run.status == "finished"
    assert run.config["max_steps"] == 10
    assert run.config["seed"] == 3
    assert run.final["test_accuracy"] == result["test_accuracy"]
    curve = SqliteRunStore(data_dir).step_curve("cli", result["run_id"])
    assert curve["step"].tolist() == list(range(1, 11))


def test_cli_explains_a_bad_data_folder_without_a_traceback(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "cnnlab.train", "--dataset", "mnist", "--data-dir",
         str(tmp_path / "missing"), "--epochs", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.startswith("error: ")
    assert "Traceback" not in out.stderr


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    """The command line run in this process (no interpreter start-up): status, stdout, stderr."""
    status = main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.mark.parametrize(
    ("device", "words"),
    [("gpu", "device must be cpu, cuda"), ("cuda", "no CUDA GPU is available here")],
)
def test_a_device_this_machine_lacks_is_refused_before_a_run_is_recorded(
    data_dir, capsys, device, words
):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    status, _out, err = _cli(capsys, "--dataset", "shapes", "--limit", "50", "--device", device)
    assert status == 2
    assert err.startswith("error: ")
    assert words in err
    assert SqliteRunStore(data_dir).list_runs("cli") == []


def test_flags_for_early_stopping_augmentation_and_tuned_settings():
    config = build_config(parse_args(["--early-stopping", "3", "--augment"]))
    assert config["early_stopping_patience"] == 3
    assert config["augment"] is True
    assert config["label_smoothing"] == 0.0  # the teaching default
    tuned = build_config(parse_args(["--preset", "fast", "--tuned", "--epochs", "4"]))
    assert tuned["label_smoothing"] == TUNED_SETTINGS["fast"]["label_smoothing"]
    assert tuned["epochs"] == 4


def test_a_small_set_is_warned_about_with_its_numbers(data_dir, capsys):
    status, _out, err = _cli(
        capsys, "--dataset", "shapes", "--limit", "20", "--max-steps", "2", "--threads", "1"
    )
    assert status == 0
    assert err.startswith(
        "warning: 18 training images, batch 64: 1 step per epoch, 2 steps in total — too few: "
        "expect the network to stay near chance (10%)"
    )
    assert "Try --batch-size 4 --epochs 25." in err  # 4 steps per epoch


def test_resume_goes_on_from_a_stopped_runs_checkpoint(data_dir, capsys):
    store = SqliteRunStore(data_dir)
    config = build_config(parse_args(["--epochs", "2", "--batch-size", "32", "--seed", "1"]))
    run_id = store.create_run(
        "cli", dataset="shapes", config=config, spec=PRESETS["fast"].to_dict(),
        meta={"data_options": {"limit": 300}}, status="running",
    )  # fmt: skip
    store.update_status(run_id, "running", stop_requested=1)  # stops after its first step
    assert execute(store, run_id, threads=1).status == "stopped"
    status, out, _err = _cli(capsys, "--resume", run_id, "--threads", "1")
    assert status == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["run_id"], result["status"]) == (run_id, "finished")
    # 300 shapes: 270 to train in batches of 32, 8 steps per epoch: steps 2… follow step 1.
    assert store.step_curve("cli", run_id)["step"].tolist() == list(range(1, 17))
    assert "resuming" in out.splitlines()[0]
    # A finished run cannot be resumed, and an unknown one is named.
    status, _out, err = _cli(capsys, "--resume", run_id)
    assert status == 2
    assert "is finished: only a run that ended early" in err
    status, _out, err = _cli(capsys, "--resume", "nope")
    assert status == 2
    assert "No run 'nope'" in err


def test_the_worker_reports_its_phases_before_the_first_step(data_dir, monkeypatch):
    store = SqliteRunStore(data_dir)
    reported = []
    update = store.update_progress
    monkeypatch.setattr(
        store, "update_progress", lambda run_id, p: (reported.append(dict(p)), update(run_id, p))
    )
    config = build_config(parse_args(["--epochs", "1", "--max-steps", "2"]))
    run_id = store.create_run(
        "cli", dataset="shapes", config=config, spec=PRESETS["fast"].to_dict(),
        meta={"data_options": {"limit": 100}}, status="running",
    )  # fmt: skip
    assert execute(store, run_id, threads=1).status == "finished"
    # The page names each phase until the first step's progress replaces it.
    assert [p.get("phase") for p in reported[:3]] == ["data", "model", "train"]
    assert "step" in reported[-1]
    # Each epoch's eval-mode metrics on training images are kept with the run for the curves.
    probe = store.get_array("cli", run_id, TRAIN_EVAL_ARRAY)
    epoch = store.epochs("cli", run_id)[0]
    assert probe.shape == (1, 3)
    assert probe[0, 0] == 1
    assert 0 <= probe[0, 2] <= 1
    assert probe[0, 1] > 0
    assert epoch.val_loss is not None

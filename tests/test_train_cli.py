"""The command line trains headless, records the run, and ends with one JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.runs import SqliteRunStore

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

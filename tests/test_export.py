"""Exported scripts: the model class equals the app's, the data matches, and the script trains."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.data import load_dataset, make_shapes
from cnnlab.export import export_script, model_code
from cnnlab.models import PRESETS, LayerSpec, ModelSpec, build_model
from cnnlab.runs import SqliteRunStore
from cnnlab.training import TrainConfig


@pytest.fixture
def data_dir(_isolated_data_dir: Path) -> Path:
    """The per-test CNNLAB_DATA_DIR that tests/conftest.py sets."""
    return _isolated_data_dir


def _idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(
        ">" + "I" * array.ndim, *array.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _run(store: SqliteRunStore, dataset: str, preset: str, options: dict | None = None):
    config = {**TrainConfig().to_dict(), "batch_size": 16, "epochs": 1}
    run_id = store.create_run(
        "alice",
        dataset=dataset,
        config=config,
        spec=PRESETS[preset].to_dict(),
        meta={"input_shape": [1, 28, 28], "num_classes": 10, "data_options": options or {}},
    )
    return store.get_run("alice", run_id)


def _load(script: str, tmp_path: Path) -> dict:
    namespace: dict = {"__name__": "exported"}
    exec(compile(script, str(tmp_path / "exported.py"), "exec"), namespace)
    return namespace


# Every preset, and a residual block without batch norm (the deeper labs' plain-skip network).
_SPECS = {
    **PRESETS,
    "residual_without_bn": ModelSpec(
        (
            LayerSpec("residual", {"out_channels": 8, "stride": 2, "batch_norm": False}),
            LayerSpec("global_avgpool", {}),
            LayerSpec("linear", {"out_features": "classes"}),
        )
    ),
}


@pytest.mark.parametrize("name", sorted(_SPECS))
def test_the_exported_model_is_the_apps_model(name, tmp_path):
    ns = _load(
        "import torch\nfrom torch import nn\n" + model_code(_SPECS[name], (1, 28, 28), 10),
        tmp_path,
    )
    ours = build_model(_SPECS[name], (1, 28, 28), 10).eval()
    theirs = ns["Net"]().eval()
    theirs.load_state_dict(ours.state_dict())  # same layer names, same shapes
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(theirs(x), ours(x))


def test_the_exported_idx_script_trains_a_few_steps(data_dir, tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "digits"
    data.mkdir()
    # Only the t10k files, as in the benchmark folder: the script splits them 80/20 like the app.
    _idx(data / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (80, 28, 28)))
    _idx(data / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 80))
    run = _run(SqliteRunStore(data_dir), "mnist", "fast")
    script = tmp_path / "exported.py"
    script.write_text(export_script(run))
    ns = _load(script.read_text(), tmp_path)
    app = load_dataset("mnist", data_dir=data)
    for ours, theirs in zip(
        (app.train_x, app.train_y, app.test_x, app.test_y), ns["load_data"](str(data)), strict=True
    ):
        assert np.array_equal(np.asarray(ours), theirs)
    out = subprocess.run(
        [sys.executable, str(script), "--data-dir", str(data), "--max-steps", "3"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "step 3/3" in out.stdout
    assert "test accuracy" in out.stdout.splitlines()[-1]


def test_the_exported_shapes_script_generates_the_same_images(data_dir, tmp_path):
    run = _run(SqliteRunStore(data_dir), "shapes", "small_resnet", {"limit": 40})
    script = export_script(run)
    assert "import cnnlab" not in script
    assert "from cnnlab" not in script
    ns = _load(script, tmp_path)
    app = make_shapes(40, 40, 0)
    for ours, theirs in zip(
        (app.train_x, app.train_y, app.test_x, app.test_y), ns["load_data"]("."), strict=True
    ):
        assert np.array_equal(np.asarray(ours), theirs)
    path = tmp_path / "shapes.py"
    path.write_text(script)
    out = subprocess.run(
        [sys.executable, str(path), "--max-steps", "2"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "test accuracy" in out.stdout


def test_an_uploaded_data_set_cannot_be_exported(data_dir):
    run = _run(SqliteRunStore(data_dir), "upload", "fast")
    with pytest.raises(ValueError, match="cannot be exported"):
        export_script(run)

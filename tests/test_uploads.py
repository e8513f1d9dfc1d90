"""A learner's zip reaches the worker: saved once by digest, read back identically, trained on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from class_zip import class_zip

from cnnlab import uploads
from cnnlab.runs import SqliteRunStore


@pytest.fixture
def data_dir(_isolated_data_dir: Path) -> Path:
    """The per-test CNNLAB_DATA_DIR that tests/conftest.py sets."""
    return _isolated_data_dir


def test_a_saved_zip_loads_back_as_the_same_data_set(data_dir: Path):
    data = class_zip()
    digest = uploads.save_zip(data, data_dir)
    path = data_dir / "uploads" / f"{digest}.zip"
    assert path.read_bytes() == data
    mtime = path.stat().st_mtime_ns
    assert uploads.save_zip(data, data_dir) == digest  # same bytes: kept once
    assert path.stat().st_mtime_ns == mtime
    here = uploads.read_zip(data, size=16)
    there = uploads.load_uploaded_zip(digest, data_dir, size=16)
    assert here.classes == there.classes == ("left", "right")
    assert torch.equal(here.train_x, there.train_x)
    assert torch.equal(here.test_y, there.test_y)
    assert here.input_shape == (1, 16, 16)
    assert len(here.train_y) + len(here.test_y) == 24
    colour = uploads.read_zip(data, size=32, grayscale=False, limit=5)
    assert colour.input_shape == (3, 32, 32)
    assert len(colour.train_y) == 5
    assert len(colour.test_y) <= 5
    assert colour.mean == uploads.read_zip(data, size=32, grayscale=False).mean


def test_missing_damaged_or_made_up_uploads_are_explained(data_dir: Path):
    digest = uploads.zip_digest(b"never saved")
    with pytest.raises(ValueError, match="no longer on the server"):
        uploads.load_uploaded_zip(digest, data_dir)
    saved = uploads.save_zip(class_zip(), data_dir)
    (data_dir / "uploads" / f"{saved}.zip").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="damaged"):
        uploads.load_uploaded_zip(saved, data_dir)
    with pytest.raises(ValueError, match="not the digest"):
        uploads.load_uploaded_zip("../../etc/passwd", data_dir)
    with pytest.raises(ValueError, match="image size must be one of"):
        uploads.read_zip(class_zip(), size=30)
    with pytest.raises(ValueError, match="not a zip archive"):
        uploads.read_zip(b"PK\x03\x04 but not really a zip")


def test_the_worker_trains_on_an_uploaded_zip(data_dir: Path):
    from cnnlab.models import PRESETS
    from cnnlab.training import TrainConfig
    from cnnlab.worker import execute

    store = SqliteRunStore(data_dir)
    digest = uploads.save_zip(class_zip(per_class=20), data_dir)
    config = {**TrainConfig().to_dict(), "epochs": 3, "batch_size": 8}
    run_id = store.create_run(
        "alice",
        dataset=uploads.UPLOAD,
        config=config,
        spec=PRESETS["fast"].to_dict(),
        meta={"data_options": {"digest": digest, "size": 16, "grayscale": True}},
    )
    run = execute(store, run_id, threads=1)
    assert run.status == "finished", run.error
    assert run.meta["classes"] == ["left", "right"]
    assert run.meta["input_shape"] == [1, 16, 16]
    assert sum(map(sum, run.final["confusion"])) == 8  # 20 % of each class's 20 images
    assert run.final["test_accuracy"] == 1.0  # bright left band vs bright right band

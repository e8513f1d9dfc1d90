"""A learner's zip reaches the worker: saved once by digest, read back identically, trained on."""

from __future__ import annotations

import os
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


def _zip_of(n: int) -> bytes:
    """A distinct valid-looking payload of about ``n`` bytes (save_zip does not decode)."""
    return n.to_bytes(8, "big") + bytes(n)


def test_each_owner_keeps_their_newest_zips_within_the_quota(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CNNLAB_UPLOAD_QUOTA_MB", "1")
    first = uploads.save_zip(_zip_of(400_000), data_dir, owner="alice", now=1000)
    second = uploads.save_zip(_zip_of(400_000 + 1), data_dir, owner="alice", now=1001)
    shared = uploads.save_zip(_zip_of(400_000 + 2), data_dir, owner="bob", now=1002)
    assert uploads.save_zip(_zip_of(400_000 + 2), data_dir, owner="alice", now=1003) == shared
    zips = data_dir / "uploads"
    # Alice's three zips (1.2 MB) exceed 1 MB: her oldest goes, her newest and Bob's stay.
    assert not (zips / f"{first}.zip").exists()
    assert (zips / f"{second}.zip").exists()
    assert (zips / f"{shared}.zip").exists()
    with pytest.raises(ValueError, match="up to 1 MB"):
        uploads.save_zip(_zip_of(1_100_000), data_dir, owner="alice")
    # The owner's id (a cookie value) never becomes a path: only its hash does.
    assert all(len(p.name) == 32 for p in (zips / "owners").iterdir())


def test_zips_expire_after_their_last_save(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CNNLAB_UPLOAD_TTL_HOURS", "1")
    old = uploads.save_zip(_zip_of(10), data_dir, owner="alice", now=0)
    kept = uploads.save_zip(_zip_of(11), data_dir, owner="bob", now=0)
    path = data_dir / "uploads"
    for digest in (old, kept):
        os.utime(path / f"{digest}.zip", (0, 0))
    uploads.save_zip(_zip_of(11), data_dir, owner="bob", now=3000)  # Bob uses his again
    assert uploads.prune_uploads(data_dir, now=3700) == 1
    assert not (path / f"{old}.zip").exists()
    with pytest.raises(ValueError, match="no longer on the server"):
        uploads.load_uploaded_zip(old, data_dir)
    assert (path / f"{kept}.zip").exists()
    assert uploads.prune_uploads(data_dir, now=3000 + 3601) == 1


def test_bad_quota_settings_are_explained(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CNNLAB_UPLOAD_QUOTA_MB", "lots")
    with pytest.raises(ValueError, match="CNNLAB_UPLOAD_QUOTA_MB must be a number"):
        uploads.save_zip(b"x", data_dir)


def test_all_owners_together_stay_within_the_server_wide_cap(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CNNLAB_UPLOADS_TOTAL_MB", "1")
    # Three cookie-less browsers, three owners: each within its own quota, not together.
    digests = [
        uploads.save_zip(_zip_of(400_000 + i), data_dir, owner=f"browser-{i}", now=1000 + i)
        for i in range(3)
    ]
    kept = [(data_dir / "uploads" / f"{d}.zip").exists() for d in digests]
    assert kept == [False, True, True]
    total = sum(p.stat().st_size for p in (data_dir / "uploads").glob("*.zip"))
    assert total <= 1_000_000

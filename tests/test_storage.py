"""Shared storage: keys map inside the root only, writes are atomic, deletes take a whole run."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.storage import LocalStorage


def test_put_exists_path_and_delete(tmp_path: Path):
    storage = LocalStorage(tmp_path)
    storage.put("runs/abc123/weights.safetensors", lambda tmp: tmp.write_bytes(b"w1"))
    storage.put("runs/abc123/checkpoint.pt", lambda tmp: tmp.write_bytes(b"c1"))
    assert storage.exists("runs/abc123/weights.safetensors")
    assert storage.path("runs/abc123/weights.safetensors").read_bytes() == b"w1"
    assert storage.path("runs/abc123") == tmp_path / "runs" / "abc123"
    storage.delete("runs/abc123")  # the run's folder, everything under it
    assert not storage.exists("runs/abc123")
    storage.delete("runs/abc123")  # nothing left: no error


def test_a_failed_write_keeps_the_previous_bytes_and_leaves_no_temp_file(tmp_path: Path):
    storage = LocalStorage(tmp_path)
    storage.put("uploads/a.zip", lambda tmp: tmp.write_bytes(b"old"))

    def crash(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        storage.put("uploads/a.zip", crash)
    assert storage.path("uploads/a.zip").read_bytes() == b"old"
    assert [p.name for p in (tmp_path / "uploads").iterdir()] == ["a.zip"]


@pytest.mark.parametrize("key", ["../etc/passwd", "/etc/passwd", "runs/../../x", "runs//x", ""])
def test_a_key_that_could_leave_the_root_is_refused(tmp_path: Path, key: str):
    with pytest.raises(ValueError, match="Not a storage key"):
        LocalStorage(tmp_path).path(key)

"""Shared test set-up: every test gets its own data directory for anything that writes."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs, caches and downloads of a test go to its own temporary folder, never ./data."""
    data = tmp_path / "cnnlab-data"
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(data))
    return data

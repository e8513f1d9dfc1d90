"""Shared test set-up: repository paths and a per-test data directory for anything that writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def app_test(script: str = "app.py", timeout: float = 60) -> AppTest:
    """An AppTest of ``script`` (relative to the repository root, e.g. ``pages/pooling.py``)."""
    return AppTest.from_file(str(ROOT / script), default_timeout=timeout)


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs, caches and downloads of a test go to its own temporary folder, never ./data."""
    data = tmp_path / "cnnlab-data"
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(data))
    return data

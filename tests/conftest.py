"""Shared test set-up: every test gets its own data directory for anything that writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (scripts/test.sh: two workers on two cores) each worker computes on one
    torch thread: two workers with two threads each fight over the cores (torch on two threads
    slows 2–12× when anything else is busy), and the app's pages set one thread anyway."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs, caches and downloads of a test go to its own temporary folder, never ./data."""
    data = tmp_path / "cnnlab-data"
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(data))
    return data

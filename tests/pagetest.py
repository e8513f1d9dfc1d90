"""AppTest with paths from the repository root (AppTest itself resolves them from the caller)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def app_test(script: str = "app.py", timeout: float = 60) -> AppTest:
    """An AppTest of ``script`` (relative to the repository root, e.g. ``pages/pooling.py``)."""
    return AppTest.from_file(str(ROOT / script), default_timeout=timeout)

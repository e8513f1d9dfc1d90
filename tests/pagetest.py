"""AppTest with paths from the repository root (AppTest itself resolves them from the caller)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def app_test(script: str = "app.py", timeout: float = 60) -> AppTest:
    """An AppTest of ``script`` (relative to the repository root, e.g. ``pages/pooling.py``)."""
    return AppTest.from_file(str(ROOT / script), default_timeout=timeout)


def rendered(script: str, timeout: float = 120) -> AppTest:
    """``script`` after its first run, which must not have raised."""
    at = app_test(script, timeout=timeout).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    """The page's ``st.metric`` values by label."""
    return {m.label: m.value for m in at.metric}

"""The import heap is frozen, so Streamlit's collection after every run stays off the rerun path."""

from __future__ import annotations

import gc

import pytest
import torch  # noqa: F401  (the heap this is about)
from pagetest import app_test

from ui import heap


@pytest.fixture
def fresh(monkeypatch):
    """As in a new server process: nothing frozen yet. Unfreezes afterwards."""
    monkeypatch.setattr(heap, "_modules_when_frozen", 0)
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_freezing_leaves_the_collector_little_to_walk(fresh) -> None:
    gc.collect()  # what earlier tests of this process left for the collector is not the heap
    before = len(gc.get_objects())  # what a full gc.collect() walks
    heap.freeze_import_heap()
    assert gc.get_freeze_count() > 0.9 * before
    assert len(gc.get_objects()) < 0.01 * before


def test_it_freezes_again_only_after_new_imports(fresh, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    heap.freeze_import_heap()
    heap.freeze_import_heap()
    assert calls == ["freeze"]
    monkeypatch.setattr(heap, "_modules_when_frozen", heap._modules_when_frozen - 1)  # an import
    heap.freeze_import_heap()
    assert calls == ["freeze", "freeze"]


def test_the_app_freezes_the_heap_on_its_first_run(fresh, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    at = app_test("app.py").run()
    assert not at.exception
    assert calls, "app.py must call ui.heap.freeze_import_heap"

"""AppTest of the Train page's queue: a learner whose run waits sees their position and an
expected start computed from runs that finished on this server; a full queue is explained."""

from __future__ import annotations

import os
import re
import time

import pytest
from pagetest import app_test

from cnnlab import jobs
from cnnlab.runs import SqliteRunStore, default_data_dir


@pytest.fixture(autouse=True)
def _one_slot(monkeypatch):
    monkeypatch.setenv("CNNLAB_MAX_CONCURRENT_RUNS", "1")
    yield
    jobs.shutdown_scheduler()


def _hold_the_slot(store: SqliteRunStore) -> str:
    """Another learner's run holds the only slot (its 'worker' is this live process)."""
    other = store.create_run("someone", dataset="mnist", config={"epochs": 1}, spec={})
    store.claim_next(max_running=1, worker_pid=os.getpid())
    return other


def _page():
    at = app_test("pages/train.py", timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="train.data.limit").set_value(300)
    return at.run()


def _texts(at) -> str:
    return " ".join(e.value for e in [*at.info, *at.markdown])


def test_a_queued_learner_sees_their_position_and_an_estimate_from_measured_runs():
    store = SqliteRunStore(default_data_dir())
    _hold_the_slot(store)
    at = _page()
    at.button(key="train.start").click().run()
    assert not at.exception
    mine = store.queue()[0]
    assert "No estimate of the wait yet" in _texts(at)  # nothing has finished here yet

    # Three runs of the same size finished in 600, 620 and 900 s of slot time: the median, 620 s,
    # is what the run holding the slot and this one are each expected to take.
    for i, seconds in enumerate((600, 620, 900)):
        done = store.create_run(
            f"past{i}", dataset=mine.dataset, config=mine.config, spec=mine.spec, meta=mine.meta
        )
        with store._tx() as db:  # claimed and ended out of the queue's way
            db.execute("UPDATE runs SET status='running', started_at=? WHERE id=?",
                       (time.time() - seconds, done))  # fmt: skip
        store.finish(done, "finished")
    with store._tx() as db:  # the slot's run started just now
        db.execute("UPDATE runs SET started_at=? WHERE status='running'", (time.time(),))
    at.run()
    text = _texts(at)
    assert "position **1** in the queue (this server trains 1 run at a time)" in text
    # ~620 s left for the run in the slot, minus the seconds this test took since.
    assert re.search(r"Expected to start in about \*\*(10 min [0-2]\d s|9 min \d\d s)\*\*", text), (
        text
    )
    assert "judging by the 3 similar runs" in text
    assert "(about 10 min 20 s each)" in text
    assert at.button(key="train.start").disabled  # one run at a time per browser


def test_a_full_queue_is_explained_and_nothing_is_queued(monkeypatch):
    monkeypatch.setenv("CNNLAB_MAX_QUEUE", "1")
    store = SqliteRunStore(default_data_dir())
    _hold_the_slot(store)
    store.create_run("waiting", dataset="mnist", config={"epochs": 1}, spec={})
    at = _page()
    at.button(key="train.start").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("training queue is full" in e and "try again in a few minutes" in e for e in errors)
    assert [r.owner for r in store.queue()] == ["waiting"]

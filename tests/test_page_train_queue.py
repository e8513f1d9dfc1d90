"""AppTest of the Train page's queue: a learner whose run waits sees their position and an
expected start computed from runs that finished on this server; a full queue, a resume past the
compute budget and a resume while another run trains are explained."""

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


OWNER = "f" * 32  # a valid owner id, as the browser's cookie would bring


def _timed_out_run(store: SqliteRunStore, seconds_used: float) -> str:
    """A run of OWNER that reached its budget after ``seconds_used`` of slot time, resumable."""
    import torch

    from cnnlab.models import PRESETS
    from cnnlab.training import TrainConfig

    run_id = store.create_run(
        OWNER, dataset="shapes", config=TrainConfig().to_dict(), spec=PRESETS["fast"].to_dict()
    )
    store.update_status(run_id, "running", started_at=time.time() - seconds_used)
    store.save_checkpoint(run_id, 0, {"model": {"w": torch.zeros(1)}})
    store.finish(run_id, "timed_out", error="The run reached this server's time budget.")
    return run_id


def _history_page():
    at = app_test("pages/train.py", timeout=120)
    at.session_state["owner.id"] = OWNER
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_resuming_past_the_compute_budget_is_refused_with_the_numbers(monkeypatch):
    monkeypatch.setenv("CNNLAB_RUN_COMPUTE_BUDGET_S", "100")
    store = SqliteRunStore(default_data_dir())
    run_id = _timed_out_run(store, seconds_used=100)
    at = _history_page()
    at.button(key="train.history.resume").click().run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "used its whole compute budget (100 s of 100 s over all its attempts)" in errors
    assert store.load_run(run_id).status == "timed_out"  # not queued again


def test_resuming_while_another_run_trains_is_refused(monkeypatch):
    store = SqliteRunStore(default_data_dir())
    run_id = _timed_out_run(store, seconds_used=5)
    store.create_run(OWNER, dataset="mnist", config={"epochs": 1}, spec={})
    store.claim_next(max_running=1, worker_pid=os.getpid())  # OWNER's other run holds a slot
    at = _history_page()
    at.selectbox(key="train.history.run").set_value(run_id).run()
    at.button(key="train.history.resume").click().run()
    assert not at.exception
    assert any("You already have a run queued or training" in e.value for e in at.error)
    assert store.load_run(run_id).status == "timed_out"

"""Queue estimates: the slot simulation against a second-by-second brute force, and the estimate
of a queued run from runs that finished in a real store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnlab.queue_estimate import estimate, size_key, wait_for_slot
from cnnlab.runs import SqliteRunStore


def brute_force_wait(remaining: list[int], ahead: list[int], slots: int) -> int:
    """Tick one second at a time: a free slot takes the next queued run; when does ours start?"""
    busy = sorted(remaining)
    # Over the cap, only the longest `slots` runs hold the slots that will free for the queue.
    holding = busy[-slots:] if len(busy) >= slots else busy
    slot_left = holding + [0] * (slots - len(holding))
    queue = list(ahead)
    t = 0
    while True:
        for i, left in enumerate(slot_left):
            while left == 0 and queue:  # a zero-length run frees its slot at once
                left = queue.pop(0)
            if left == 0 and not queue:
                return t
            slot_left[i] = left
        t += 1
        slot_left = [max(0, s - 1) for s in slot_left]


@given(
    remaining=st.lists(st.integers(0, 20), max_size=5),
    ahead=st.lists(st.integers(0, 20), max_size=8),
    slots=st.integers(1, 4),
)
def test_the_wait_matches_a_second_by_second_simulation(remaining, ahead, slots):
    assert wait_for_slot(remaining, ahead, slots) == brute_force_wait(remaining, ahead, slots)


@given(
    remaining=st.lists(st.floats(0, 100), max_size=4),
    ahead=st.lists(st.floats(0, 100), max_size=6),
    extra=st.floats(0, 100),
    slots=st.integers(1, 3),
)
def test_one_more_run_ahead_never_shortens_the_wait(remaining, ahead, extra, slots):
    assert wait_for_slot(remaining, [*ahead, extra], slots) >= wait_for_slot(
        remaining, ahead, slots
    )


def test_worked_examples():
    assert wait_for_slot([10], [5, 7], slots=1) == 22
    assert wait_for_slot([10, 3], [5], slots=2) == 8  # the slot free at 3 takes the 5 s run
    assert wait_for_slot([], [], slots=2) == 0
    assert wait_for_slot([4, 9, 2], [], slots=2) == 4  # three running, two slots
    with pytest.raises(ValueError, match="at least one"):
        wait_for_slot([], [], slots=0)


@pytest.fixture
def store(_isolated_data_dir: Path) -> SqliteRunStore:
    return SqliteRunStore(_isolated_data_dir)


def _finished(store: SqliteRunStore, owner: str, seconds: float, epochs: int = 2) -> None:
    run_id = _queue(store, owner, epochs)
    store.update_status(run_id, "running", started_at=time.time() - seconds)
    store.finish(run_id, "finished")


def _queue(store: SqliteRunStore, owner: str, epochs: int = 2) -> str:
    return store.create_run(
        owner,
        dataset="shapes",
        config={"epochs": epochs, "batch_size": 64, "seed": len(owner)},
        spec={"layers": [{"kind": "flatten"}]},
    )


def test_a_queued_run_is_estimated_from_similar_finished_runs(store: SqliteRunStore):
    for owner, seconds in (("f1", 10), ("f2", 12), ("f3", 30)):
        _finished(store, owner, seconds)
    _finished(store, "other", 100, epochs=9)  # another size: not in the median
    now = time.time()
    running = _queue(store, "r")
    store.claim_next(max_running=1)
    store.update_status(running, "running", started_at=now - 4)
    first, second = _queue(store, "q1"), _queue(store, "q2")

    est = estimate(store, second, slots=1, now=now)
    assert (est.position, est.slots, est.samples, est.similar) == (2, 1, 3, True)
    assert est.typical_seconds == pytest.approx(12, abs=0.5)  # median of 10, 12, 30
    # The running run needs ~12 − 4 more seconds, then the first queued one ~12.
    assert est.wait_seconds == pytest.approx(8 + 12, abs=1)
    assert estimate(store, first, slots=2, now=now).wait_seconds == 0  # a slot is free
    assert estimate(store, running, slots=1) is None  # not queued

    # A run of a size never seen is measured against every recent run.
    odd = store.create_run("odd", dataset="mnist", config={"epochs": 1}, spec={})
    est = estimate(store, odd, slots=1, now=now)
    assert (est.samples, est.similar) == (4, False)
    assert est.typical_seconds == pytest.approx(21, abs=1)  # median of 10, 12, 30, 100


def test_no_estimate_before_any_run_finished(store: SqliteRunStore):
    first = _queue(store, "a")
    assert estimate(store, first, slots=1).wait_seconds == 0  # a free slot: it starts now
    store.claim_next(max_running=1)
    run_id = _queue(store, "b")
    est = estimate(store, run_id, slots=1)
    assert (est.position, est.wait_seconds, est.typical_seconds) == (1, None, None)


def test_the_size_key_ignores_what_does_not_change_the_time(store: SqliteRunStore):
    a, b = _queue(store, "a"), _queue(store, "bb")  # different seeds
    c = _queue(store, "c", epochs=3)
    key = {i: size_key(store.load_run(i)) for i in (a, b, c)}
    assert key[a] == key[b] != key[c]

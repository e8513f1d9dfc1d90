"""When a queued run should start: its place in the fair queue and a wait measured from past runs.

The wait is a small simulation, not a guess: every training slot takes the next run in queue
order as soon as it is free (list scheduling), the runs training now hold their slots for what is
left of their expected time, and a run's expected time is the median slot time of recent runs of
the same size (same data, layers, epochs and batch size) that finished on this server, or of all
recent finished runs when none is alike. Until some run has finished there is no estimate.
"""

from __future__ import annotations

import heapq
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from cnnlab.runs import Run, RunStore


@dataclass(frozen=True)
class QueueEstimate:
    """Where a queued run stands and when it should start."""

    position: int  # 1: the next run to start
    slots: int  # runs this server trains at once
    wait_seconds: float | None  # None until runs like these have finished here
    typical_seconds: float | None  # the expected slot time of this run
    samples: int  # finished runs that expectation is the median of
    similar: bool  # those runs were of the same size (else: all recent runs)


def size_key(run: Run) -> str:
    """What makes two runs take about as long: data and its options, layers, epochs, batch size
    and step cap (seed, learning rate and the like do not change the time)."""
    cfg = run.config
    return json.dumps(
        [
            run.dataset,
            run.meta.get("data_options", {}),
            run.spec,
            cfg.get("epochs"),
            cfg.get("batch_size"),
            cfg.get("max_steps"),
        ],
        sort_keys=True,
    )


class Durations:
    """Expected slot time of a run, from the measured slot times of finished runs."""

    def __init__(self, finished: Sequence[Run]) -> None:
        self._by_key: dict[str, list[float]] = {}
        for run in finished:
            self._by_key.setdefault(size_key(run), []).append(run.compute_seconds)
        self._all = [run.compute_seconds for run in finished]

    def expected(self, run: Run) -> tuple[float | None, int, bool]:
        """(median seconds, how many runs it is over, whether they were the same size)."""
        alike = self._by_key.get(size_key(run))
        if alike:
            return statistics.median(alike), len(alike), True
        if self._all:
            return statistics.median(self._all), len(self._all), False
        return None, 0, False


def wait_for_slot(remaining: Sequence[float], ahead: Sequence[float], slots: int) -> float:
    """Seconds until a slot is free for the run queued behind ``ahead``.

    ``remaining``: seconds the runs holding slots still need; ``ahead``: expected slot times of
    the runs before it, in queue order. Each freed slot takes the next run in order.
    """
    if slots < 1:
        raise ValueError("A server trains at least one run at a time.")
    busy = sorted(max(0.0, r) for r in remaining)
    # More runs than slots (the cap was lowered): a slot frees only as the surplus ends.
    free_at = busy[-slots:] if len(busy) >= slots else [0.0] * (slots - len(busy)) + busy
    heapq.heapify(free_at)
    for seconds in ahead:
        heapq.heappush(free_at, heapq.heappop(free_at) + max(0.0, seconds))
    return free_at[0]


def estimate(
    store: RunStore, run_id: str, slots: int, now: float | None = None
) -> QueueEstimate | None:
    """The queued run's position and expected wait; None when it is not queued."""
    queue = store.queue()
    index = next((i for i, r in enumerate(queue) if r.run_id == run_id), None)
    if index is None:
        return None
    now = time.time() if now is None else now
    durations = Durations(store.recent_finished())
    typical, samples, similar = durations.expected(queue[index])
    expected_ahead = [durations.expected(r)[0] for r in queue[:index]]
    running = store.running()
    expected_running = [durations.expected(r)[0] for r in running]
    wait = None
    if None not in expected_ahead and None not in expected_running:
        remaining = [
            d - (now - (r.started_at or now))
            for r, d in zip(running, expected_running, strict=True)
        ]
        wait = wait_for_slot(remaining, expected_ahead, slots)  # type: ignore[arg-type]
    return QueueEstimate(index + 1, slots, wait, typical, samples, similar)

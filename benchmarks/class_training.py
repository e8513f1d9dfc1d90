"""A class presses Train: N page-default runs (fast preset, built-in shapes) queued over a window,
through the page's own submit path, trained by the server's scheduler and workers. Prints the
time from the first click to the first and the last result, the queue waits, and where each run's
time went (worker start-up and imports, data, model, training, evaluation, recording), for the
worker pool against a baseline measured in the same run: a fresh worker process per run (what
the server did before the pool).

    python benchmarks/class_training.py                      # 30 students within 60 s
    python benchmarks/class_training.py --students 3 --window 2 --visit 1   # a smoke run

The Train page is opened ``--visit`` seconds before the first click (students read it first),
which lets the page's warm worker finish starting, as it would in a class.

Issue 11's target: the last result within 180 s of the first click, 30 students, this machine.
A learner's page shows a result at most half a second (its polling period) after it is stored.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PHASES = ("startup", "data", "model", "train", "evaluate", "record")
MODES = {"pool": 100, "fresh": 1}  # runs per worker process before it is replaced


def class_of(
    students: int, window_s: float, runs_per_worker: int, visit_s: float, timeout_s: float
) -> dict:
    """Open the page, and ``visit_s`` later queue ``students`` page-default runs evenly over
    ``window_s``; wait for all; measure."""
    os.environ["CNNLAB_DATA_DIR"] = tempfile.mkdtemp(prefix="cnnlab-class-")
    os.environ["CNNLAB_WORKER_MAX_RUNS"] = str(runs_per_worker)
    from cnnlab import jobs
    from cnnlab.models import PRESETS
    from ui import training as ui

    sched = ui.scheduler()  # what a visit to the Train page does (it warms a worker)
    store, limits = sched.store, sched.limits
    time.sleep(visit_s)
    # Exactly what the page submits with its defaults: the layer table of the fast preset, the
    # whole shapes set, the engine's default settings.
    spec = ui.rows_spec(ui.spec_rows(PRESETS["fast"]), "fast")
    data = ui.load_data("shapes", None)
    config = ui.default_config()
    ids = []
    first_click = time.time()
    for i in range(students):
        time.sleep(max(0.0, first_click + i * window_s / students - time.time()))
        ids.append(ui.submit(sched, f"student{i:03d}", "shapes", {}, spec, data, config))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = [store.load_run(i) for i in ids]
        if not any(r.active for r in runs):
            break
        time.sleep(0.2)
    jobs.shutdown_scheduler()
    runs = [store.load_run(i) for i in ids]
    done = [r for r in runs if r.status == "finished"]
    return {
        "statuses": statistics.multimode([r.status for r in runs]),
        "finished": len(done),
        "first_s": min((r.finished_at for r in done), default=float("nan")) - first_click,
        "last_s": max((r.finished_at for r in done), default=float("nan")) - first_click,
        "wait_s": [r.started_at - r.created_at for r in done],
        "slot_s": [r.compute_seconds for r in done],
        "phases": {p: [r.final["phases"][p] for r in done] for p in PHASES},
        "workers": len({r.worker_pid for r in done}),
        "slots": limits.max_concurrent,
    }


def report(mode: str, m: dict, students: int) -> None:
    """Print one mode's numbers."""
    med = statistics.median
    print(f"\n{mode}: {m['finished']}/{students} finished on {m['slots']} slot(s), "
          f"{m['workers']} worker process(es)")  # fmt: skip
    print(f"  first result {m['first_s']:6.1f} s after the first click")
    print(f"  last result  {m['last_s']:6.1f} s after the first click (target: 180 s for 30)")
    if m["finished"]:
        print(f"  queue wait   median {med(m['wait_s']):.1f} s, max {max(m['wait_s']):.1f} s")
        print(f"  slot time    median {med(m['slot_s']):.2f} s per run")
        parts = ", ".join(f"{p} {med(v):.2f}" for p, v in m["phases"].items())
        print(f"  per run (median s): {parts}")
        print(f"  start-up, summed over runs: {sum(m['phases']['startup']):.1f} s")


def main() -> None:
    """Run the chosen modes one after the other and print them with their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--window", type=float, default=60.0, help="seconds the clicks span")
    parser.add_argument("--modes", default="pool,fresh", help="pool, fresh or both")
    parser.add_argument("--visit", type=float, default=10.0, help="page open before 1st click")
    parser.add_argument("--timeout", type=float, default=1200.0)
    args = parser.parse_args()
    results = {}
    for mode in args.modes.split(","):
        results[mode] = class_of(args.students, args.window, MODES[mode], args.visit, args.timeout)
        report(mode, results[mode], args.students)
    if {"pool", "fresh"} <= set(results):
        ratio = results["fresh"]["last_s"] / results["pool"]["last_s"]
        print(f"\nlast result: a fresh process per run takes {ratio:.2f}× as long as the pool")


if __name__ == "__main__":
    main()

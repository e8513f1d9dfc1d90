"""How long each lab experiment's quick setting takes, through the worker queue: queued with the
labs' own submit path, trained by the server's scheduler and a warm worker (1 torch thread, as
in a class), timed from the click to the stored result. Prints, per experiment, the median of
``--repeat`` runs of the click-to-result time and of the worker's own time, and their ratio to
the quickest experiment measured in the same run.

    python benchmarks/experiments.py                       # every experiment, 3 runs each
    python benchmarks/experiments.py --repeat 1 --only losses    # a smoke run

Issue 16's target: each quick setting finishes within a minute on this 2-core CPU.
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


def measure(names: list[str], repeat: int, timeout_s: float) -> dict[str, tuple[float, float]]:
    """Median (click → result, worker seconds) of each experiment's quick setting."""
    from cnnlab import experiments, jobs
    from cnnlab.runs import SqliteRunStore

    sched = jobs.Scheduler(SqliteRunStore(os.environ["CNNLAB_DATA_DIR"])).start()
    sched.keep_warm()  # a visitor of the lab; the worker imports torch before the first click
    time.sleep(10)
    medians = {}
    try:
        for name in names:
            wall, worker = [], []
            for i in range(repeat):
                clicked = time.time()
                run_id = experiments.submit(sched, f"teacher{i}", name, seed=i, quick=True)
                deadline = time.monotonic() + timeout_s
                while (run := sched.store.load_run(run_id)).active:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{name}: no result after {timeout_s:.0f} s")
                    time.sleep(0.1)
                if run.status != "finished":
                    raise SystemExit(f"{name}: {run.status}: {run.error}")
                wall.append(run.finished_at - clicked)
                worker.append(run.final["seconds"])
                print(f"  {name} #{i + 1}: {wall[-1]:.1f} s click → result", flush=True)
            medians[name] = (statistics.median(wall), statistics.median(worker))
    finally:
        sched.shutdown()
    return medians


def main() -> None:
    from cnnlab.experiments import EXPERIMENTS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=EXPERIMENTS, default=list(EXPERIMENTS))
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    os.environ["CNNLAB_DATA_DIR"] = tempfile.mkdtemp(prefix="cnnlab-experiments-")
    os.environ.setdefault("CNNLAB_MAX_CONCURRENT_RUNS", "1")
    medians = measure(args.only, args.repeat, args.timeout)
    quickest = min(w for w, _ in medians.values())
    print(f"\n{'experiment':<16}{'click→result':>14}{'in worker':>12}{'× quickest':>12}")
    for name, (wall, worker) in medians.items():
        print(f"{name:<16}{wall:>12.1f} s{worker:>10.1f} s{wall / quickest:>12.2f}")
    slow = [n for n, (w, _) in medians.items() if w > 60]
    print("\nwithin a minute: " + ("all" if not slow else f"NOT {', '.join(slow)}"))


if __name__ == "__main__":
    main()

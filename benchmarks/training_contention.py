"""Page latency while runs train on the same cores: training workers below the app's priority
(``CNNLAB_WORKER_NICE``, default 10) against the same priority (0), measured side by side.

Each round starts, for each niceness in turn, a fresh ``streamlit run app.py`` of this checkout
(warmed as ``scripts/serve.sh`` warms a process, pages only) with its own data directory. One
browser-less session (``scripts/serving/st_ws.py``) moves the widgets of ``--pages`` one step and
back, round robin, for ``--duration`` seconds with nothing training (the baseline), then again
while long page-default runs (fast preset, built-in shapes, 100 epochs) train in the server's
workers, ``--concurrent`` at once (default: one per core, every core busy: a class's worst case).
Printed per niceness: median and p95 of a widget change alone and while training, the loaded /
alone ratios, and the training steps the workers made while the widgets moved (what the runs
paid for it). Issue 11's target for a class: p95 ≤ 2× one student alone.

Run on a quiet machine: ``.venv/bin/python benchmarks/training_contention.py [--rounds 2]``.
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

from benchmarks.page_runs_ab import warmed_server  # noqa: E402
from cnnlab.models import PRESETS  # noqa: E402
from cnnlab.runs import SqliteRunStore  # noqa: E402
from cnnlab.training import TrainConfig  # noqa: E402
from scripts.serving.st_ws import StreamlitSession  # noqa: E402


def _changes(session: StreamlitSession, pages: list[str], seconds: float) -> list[float]:
    """Seconds of each widget change (one step, then back) on ``pages``, for ``seconds``."""
    times: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for page in pages:
            for widget in session.run_page(page).widgets:
                if time.monotonic() > deadline:
                    return times
                if widget.id not in {w.id for w in session.widgets()}:
                    continue  # gone since an earlier change
                for _ in ("step", "back"):
                    times.append(session.change_widget(widget).seconds)
    return times


def _queue_long_runs(store: SqliteRunStore, n: int) -> list[str]:
    config = {**TrainConfig().to_dict(), "epochs": 100}
    meta = {"input_shape": [1, 28, 28], "num_classes": 10}
    spec = PRESETS["fast"].to_dict()
    return [
        store.create_run(f"student{i}", dataset="shapes", config=config, spec=spec, meta=meta)
        for i in range(n)
    ]


def _steps(store: SqliteRunStore, run_ids: list[str]) -> int:
    return sum(int(store.load_run(r).progress.get("step", 0)) for r in run_ids)


Times = tuple[list[float], list[float], int]


def measure(nice: int, args: argparse.Namespace, work: Path) -> Times:
    """Widget-change seconds alone and while training, and the steps trained meanwhile."""
    data = work / f"nice{nice}-{time.time_ns()}"
    settings = {"CNNLAB_WORKER_NICE": str(nice), "CNNLAB_MAX_CONCURRENT_RUNS": str(args.concurrent)}
    with warmed_server(ROOT, data, settings) as url, StreamlitSession(url) as session:
        session.run_page("")
        alone = _changes(session, args.pages, args.duration)
        store = SqliteRunStore(data)
        runs = _queue_long_runs(store, args.concurrent)
        session.run_page("train")  # the page starts the server's scheduler, which starts workers
        deadline = time.monotonic() + 120
        while sum(store.load_run(r).progress.get("step", 0) > 0 for r in runs) < args.concurrent:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the runs did not start training: see {data}")
            time.sleep(0.5)
        before = _steps(store, runs)
        loaded = _changes(session, args.pages, args.duration)
        return alone, loaded, _steps(store, runs) - before


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> int:
    """Measure both nicenesses, interleaved, and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nice", default="0,10", help="worker nicenesses to compare")
    parser.add_argument("--rounds", type=int, default=2, help="servers per niceness, alternating")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds per measurement")
    parser.add_argument("--concurrent", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--pages", default="pooling,convolution,arithmetic")
    args = parser.parse_args()
    args.pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    levels = [int(n) for n in args.nice.split(",")]
    results: dict[int, Times] = {n: ([], [], 0) for n in levels}
    with tempfile.TemporaryDirectory(prefix="training-contention-") as tmp:
        for _ in range(args.rounds):
            for nice in levels:
                alone, loaded, steps = measure(nice, args, Path(tmp))
                a, b, s = results[nice]
                results[nice] = (a + alone, b + loaded, s + steps)
    print(f"training_contention: widget changes on {', '.join(args.pages)}; {args.concurrent} "
          f"runs training at once; {args.rounds} × {args.duration:.0f} s per cell")  # fmt: skip
    print(f"{'nice':>4} {'alone: median':>14} {'p95':>7} {'training: median':>17} {'p95':>7} "
          f"{'× median':>9} {'× p95':>6} {'steps trained':>14}")  # fmt: skip
    for nice, (alone, loaded, steps) in results.items():
        am, ap = statistics.median(alone), _p95(alone)
        lm, lp = statistics.median(loaded), _p95(loaded)
        print(f"{nice:4d} {am * 1000:11.0f} ms {ap * 1000:4.0f} ms {lm * 1000:14.0f} ms "
              f"{lp * 1000:4.0f} ms {lm / am:8.2f}× {lp / ap:5.2f}× {steps:14d}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

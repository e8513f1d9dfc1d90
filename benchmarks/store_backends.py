"""The runs store on SQLite vs PostgreSQL: what a class's queue and pages cost on each backend.

Per operation, the median over ``--repeat`` calls, in milliseconds, and the PostgreSQL/SQLite
ratio, both measured in the same run on the same machine:

- *claim*: ``claim_next`` of one queued run among ``--queued`` (count, fair order, claim);
- *progress*: ``update_progress`` (the worker's snapshot + heartbeat, several times a second);
- *append 10 steps*: ``append_steps`` of a batch of 10 curve points (one transaction);
- *page read*: what the Train page polls for a run: ``get_run`` + ``step_curve`` (500 points)
  + ``epochs``.

PostgreSQL is a throwaway local server (Debian's binaries, as the tests start it), or the database
named by ``--url`` (it must be empty: the benchmark writes runs into it). Loopback to a local
server is the best case; add your network's round trip per statement for a remote one.

Run: ``.venv/bin/python benchmarks/store_backends.py [--repeat 200] [--queued 100]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from cnnlab.runs import PostgresRunStore, SqliteRunStore, SqlRunStore, StepPoint  # noqa: E402


def _median_ms(fn: Callable[[int], object], repeat: int) -> float:
    fn(-1)  # warm-up
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(store: SqlRunStore, repeat: int, queued: int) -> dict[str, float]:
    """Median milliseconds of each operation on ``store``."""
    config, spec = {"epochs": 2, "batch_size": 64}, {"layers": []}
    for i in range(queued + repeat + 1):
        store.create_run(f"owner{i % 37}", dataset="shapes", config=config, spec=spec)
    results = {"claim": _median_ms(lambda i: store.claim_next(10**9), repeat)}
    run_id = store.create_run("reader", dataset="shapes", config=config, spec=spec)
    store.update_status(run_id, "running")
    progress = {"step": 1, "epoch": 1, "loss": 0.5, "accuracy": 0.8}
    results["progress"] = _median_ms(lambda i: store.update_progress(run_id, progress), repeat)
    base = 10_000

    def append(i: int) -> None:
        first = base + 10 * (i + 1)
        store.append_steps(run_id, [StepPoint(first + j, 1, 0.5, 0.8) for j in range(10)])

    results["append 10 steps"] = _median_ms(append, repeat)
    store.truncate_after(run_id, 0, 0)
    store.append_steps(run_id, [StepPoint(s, 1, 0.5, 0.8) for s in range(1, 501)])

    def read(i: int) -> None:
        store.get_run("reader", run_id)
        store.step_curve("reader", run_id)
        store.epochs("reader", run_id)

    results["page read"] = _median_ms(read, repeat)
    return results


def main() -> int:
    """Measure both backends and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--queued", type=int, default=100)
    parser.add_argument("--url", help="an empty PostgreSQL database (default: a throwaway one)")
    args = parser.parse_args()
    cluster = None
    url = args.url
    if url is None:
        from postgres import Cluster, binaries

        bin_dir = binaries()
        if bin_dir is None:
            print("PostgreSQL is not installed (Debian: apt-get install postgresql)")
            return 2
        cluster = Cluster(bin_dir)
        url = cluster.create_database()
    try:
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            sqlite = measure(SqliteRunStore(a), args.repeat, args.queued)
            pg_store = PostgresRunStore(url, b)
            postgres = measure(pg_store, args.repeat, args.queued)
            pg_store.close()
    finally:
        if cluster is not None:
            cluster.stop()
    print(f"runs store, median ms over {args.repeat} calls ({args.queued} runs queued)")
    print(f"{'operation':<18}{'SQLite':>10}{'PostgreSQL':>12}{'ratio':>8}")
    for name, ms in sqlite.items():
        print(f"{name:<18}{ms:>10.3f}{postgres[name]:>12.3f}{postgres[name] / ms:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cost of the live UI around training: progress reporting in the worker, and page reruns while
a worker trains. Prints medians and ratios measured in the same run.

    python benchmarks/train_app_overhead.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["CNNLAB_DATA_DIR"] = tempfile.mkdtemp(prefix="cnnlab-bench-")


def reporting_overhead(repeats: int = 3) -> None:
    """Headless training vs the same training writing progress to the store (1 thread)."""
    import torch

    from cnnlab.data import load_dataset
    from cnnlab.models import PRESETS, build_model
    from cnnlab.runs import open_store
    from cnnlab.training import TrainConfig, train
    from cnnlab.worker import Reporter, StopSignal

    torch.set_num_threads(1)
    data = load_dataset("shapes", limit=3000)
    cfg = TrainConfig(epochs=2, batch_size=64)
    store = open_store()
    times: dict[str, list[float]] = {"headless": [], "reporting": []}
    for _ in range(repeats):
        for mode in times:
            torch.manual_seed(0)
            model = build_model(PRESETS["fast"], (1, 28, 28), 10)
            kw = {}
            if mode == "reporting":
                run_id = store.create_run("bench", dataset="shapes", config={}, spec={})
                kw = {
                    "on_step": Reporter(store, run_id).on_step,
                    "should_stop": StopSignal(store, run_id, None, False),
                }
            t = time.perf_counter()
            train(model, data, cfg, **kw)
            times[mode].append(time.perf_counter() - t)
    h, r = statistics.median(times["headless"]), statistics.median(times["reporting"])
    print(f"training 2 epochs, 3000 shapes, fast preset, 1 thread (median of {repeats}):")
    print(f"  headless {h:.2f} s, with progress to the store {r:.2f} s, ratio {r / h:.3f}")


def page_rerun_time(repeats: int = 7) -> None:
    """AppTest reruns of the Train page, idle vs while a worker process trains."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=120).run()

    def rerun_times() -> list[float]:
        out = []
        for _ in range(repeats):
            t = time.perf_counter()
            at.run()
            out.append(time.perf_counter() - t)
        return out

    idle = statistics.median(rerun_times())
    worker = subprocess.Popen(
        [sys.executable, "-m", "cnnlab.train", "--dataset", "shapes", "--epochs", "30",
         "--threads", "1", "--owner", "someone-else"],
        cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(8)  # past start-up, into training
    busy = statistics.median(rerun_times())
    worker.kill()
    worker.wait()
    print(
        f"Train page rerun (AppTest, median of {repeats}): idle {idle * 1000:.0f} ms, "
        f"while a 1-thread worker trains {busy * 1000:.0f} ms, ratio {busy / idle:.2f}"
    )


if __name__ == "__main__":
    reporting_overhead()
    page_rerun_time()

"""Training speed: the "fast" preset through cnnlab.training against the classic tutorial loop.

Runs, in the same process and interleaved (so a busy machine slows both alike), ``--repeats``
times each:

1. the reference: the classic PyTorch MNIST tutorial network and loop (a ``DataLoader`` with
   batch 64, Adam 1e-3, 4 epochs): ``shared/bench/reference_loop.py`` itself in a fresh process
   when that file is there (``--reference-script``), else the identical copy below in-process;
2. the ``fast`` preset through :func:`cnnlab.training.train` with its tuned settings
   (all 8,000 images for training: ``val_fraction=0``), on 1 torch thread (as the app's worker
   runs it, and the setting a shared machine slows least) and on all threads;
3. the 1-thread run with a "live charts" callback that buffers every step's progress and writes
   it to SQLite (WAL) every 100 ms, as the training worker does (right before or after the
   headless 1-thread run, alternating, so that the pair sees the same machine);
4. the ``fast`` preset on the embedded shapes set (generation + training, tuned settings,
   1 thread).

The reference always runs with torch's default thread count, as the original script does.

Data: MNIST t10k, first 8,000 images to train, last 2,000 to test. Prints each run, then
medians, the speed-up ratio and the machine's load.

Like with like: the reference's ``train_s`` times only its training loop (after loading the data,
building the model and optimizer; before the test evaluation), and so does
``TrainResult.train_seconds`` (after the data is on the device and the model, optimizer and
schedule are built; the test evaluation after it). The ratio uses those two. Each fast run's
whole wall time (model build, set-up, training, test evaluation) is printed beside it, with the
ratio it would give, as a stricter bound. Usage:

    python benchmarks/train_speed.py [--data ../shared/data/mnist-t10k] [--repeats 3]
        [--reference-script ../shared/bench/reference_loop.py]
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cnnlab.data import load_dataset, make_shapes  # noqa: E402
from cnnlab.models import PRESETS, build_model  # noqa: E402
from cnnlab.training import Progress, TrainConfig, train, tuned_config  # noqa: E402

DEFAULT_THREADS = torch.get_num_threads()


class TutorialCNN(nn.Module):
    """The classic tutorial network, exactly as the reference loop defines it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = x.view(-1, 64 * 7 * 7)
        return F.log_softmax(self.fc2(F.relu(self.fc1(x))), dim=1)


def reference_loop(folder: Path, epochs: int = 4) -> tuple[float, float]:
    """The reference loop of shared/bench/reference_loop.py: (train seconds, test accuracy)."""
    torch.set_num_threads(DEFAULT_THREADS)  # the fast runs may have changed it
    torch.manual_seed(0)
    images = gzip.decompress((folder / "t10k-images-idx3-ubyte.gz").read_bytes())
    labels = gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes())
    x = np.frombuffer(images, np.uint8, offset=16).reshape(-1, 1, 28, 28)
    y = np.frombuffer(labels, np.uint8, offset=8)
    x = (torch.tensor(x, dtype=torch.float32) / 255 - 0.1307) / 0.3081
    y = torch.tensor(y, dtype=torch.long)
    train_loader = DataLoader(TensorDataset(x[:8000], y[:8000]), batch_size=64, shuffle=True)
    test_loader = DataLoader(TensorDataset(x[8000:], y[8000:]), batch_size=1000)
    model = TutorialCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for xb, yb in train_loader:
            opt.zero_grad()
            F.nll_loss(model(xb), yb).backward()
            opt.step()
    seconds = time.perf_counter() - t0
    model.eval()
    correct = 0
    with torch.no_grad():
        for xb, yb in test_loader:
            correct += (model(xb).argmax(1) == yb).sum().item()
    return seconds, correct / 2000


def reference_script(script: Path, folder: Path) -> tuple[float, float]:
    """Run the shared reference script in its own process: (train seconds, test accuracy)."""
    out = subprocess.run(
        [sys.executable, str(script), str(folder), "4"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"train_s=([\d.]+) .* test_acc=([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"Unexpected output from {script}: {out!r}")
    return float(match.group(1)), float(match.group(2))


class LiveCharts:
    """What the page's worker does per step: buffer progress, flush to SQLite every 100 ms."""

    def __init__(self, path: str, interval: float = 0.1) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE steps (step INTEGER, epoch INTEGER, loss REAL, accuracy REAL, "
            "lr REAL, images_per_second REAL, eta REAL)"
        )
        self.interval = interval
        self.buffer: list[tuple] = []
        self.last = time.perf_counter()
        self.seconds = 0.0  # time spent inside the callback
        self.writes = 0

    def __call__(self, p: Progress) -> None:
        t0 = time.perf_counter()
        self.buffer.append(
            (p.step, p.epoch, p.loss, p.accuracy, p.lr, p.images_per_second, p.eta_seconds)
        )
        if t0 - self.last >= self.interval or p.step == p.total_steps:
            self.db.executemany("INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?)", self.buffer)
            self.db.commit()
            self.buffer.clear()
            self.last = time.perf_counter()
            self.writes += 1
        self.seconds += time.perf_counter() - t0

    def close(self) -> None:
        self.db.close()


def run_fast(
    data, seed: int, threads: int | None, device: str | None = None, on_step=None
) -> tuple[float, float, float]:
    """The fast preset with its tuned settings on all training images.

    Returns (training seconds as the reference counts them, accuracy, whole wall seconds).
    """
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = build_model(PRESETS["fast"], data.input_shape, data.num_classes)
    cfg = tuned_config("fast", val_fraction=0, seed=seed, device=device, threads=threads)
    result = train(model, data, cfg, on_step=on_step)
    return result.train_seconds, result.test.accuracy, time.perf_counter() - t0


def run_shapes(seed: int) -> tuple[float, float, float]:
    """Generate the shapes set and train the fast preset: (gen seconds, total seconds, acc)."""
    t0 = time.perf_counter()
    data = make_shapes(seed=seed)
    generated = time.perf_counter() - t0
    torch.manual_seed(seed)
    model = build_model(PRESETS["fast"], data.input_shape, data.num_classes)
    result = train(model, data, tuned_config("fast", seed=seed, threads=1))
    return generated, time.perf_counter() - t0, result.test.accuracy


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} CPUs"


def main() -> None:
    """Run the benchmark and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO / "../shared/data/mnist-t10k")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--reference-script", type=Path, default=REPO / "../shared/bench/reference_loop.py"
    )
    parser.add_argument("--skip-reference", action="store_true", help="only the fast runs")
    args = parser.parse_args()
    data = load_dataset("mnist", data_dir=args.data)
    print(f"torch {torch.__version__}, {DEFAULT_THREADS} threads by default; {load()}")
    rows: dict[str, list[float]] = defaultdict(list)

    def record(label: str, seconds: float, acc: float, extra: str = "") -> None:
        rows[f"{label}_s"].append(seconds)
        rows[f"{label}_acc"].append(acc)
        print(f"[{i}] {label:<10} {seconds:7.2f} s  test acc {acc:.4f}  {extra}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            if not args.skip_reference and args.reference_script.is_file():
                record("reference", *reference_script(args.reference_script, args.data))
            elif not args.skip_reference:
                record("reference", *reference_loop(args.data), "(in-process copy)")
            seconds, acc, wall = run_fast(data, seed=i, threads=DEFAULT_THREADS)
            rows["fast_all_wall"].append(wall)
            record("fast_all", seconds, acc, f"(whole run incl. build + test: {wall:.2f} s)")
            # Headless and live back to back, in alternating order, so drift hits both alike.
            for label in ("fast_1t", "live_1t")[:: 1 if i % 2 == 0 else -1]:
                if label == "fast_1t":
                    seconds, acc, wall = run_fast(data, seed=i, threads=1)
                    rows["fast_1t_wall"].append(wall)
                    record(label, seconds, acc, f"(whole run incl. build + test: {wall:.2f} s)")
                    continue
                live = LiveCharts(os.path.join(tmp, f"live{i}.db"))
                seconds, acc, _ = run_fast(data, seed=i, threads=1, on_step=live)
                live.close()
                rows["callback_share"].append(live.seconds / seconds)
                extra = f"callback {live.seconds * 1000:.0f} ms in all, {live.writes} SQLite writes"
                record(label, seconds, acc, extra)
            gen, seconds, acc = run_shapes(seed=i)
            rows["shapes_gen_s"].append(gen)
            record("shapes_1t", seconds, acc, f"(generating the set: {gen:.1f} s)")
            print(f"    {load()}", flush=True)

    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"\nmedians over {args.repeats} runs (accuracy: median, min):")
    for label in ("reference", "fast_1t", "fast_all", "live_1t", "shapes_1t"):
        if f"{label}_s" in med:
            print(
                f"  {label:<10} {med[f'{label}_s']:7.2f} s   acc {med[f'{label}_acc']:.4f}, "
                f"{min(rows[f'{label}_acc']):.4f}"
            )
    if "reference_s" in med:
        for label in ("fast_1t", "fast_all"):
            per_run = [r / f for r, f in zip(rows["reference_s"], rows[f"{label}_s"], strict=True)]
            print(
                f"  speed-up {label}: {med['reference_s'] / med[f'{label}_s']:.1f}× "
                f"(ratio of medians; per run {', '.join(f'{r:.1f}×' for r in per_run)}); "
                f"target ≥ 8× at ≥ 0.99"
            )
            wall = med[f"{label}_wall"]
            print(
                f"    whole-run wall {wall:.2f} s (build + set-up + training + test): "
                f"{med['reference_s'] / wall:.1f}×"
            )
    overhead = [lv / h - 1 for lv, h in zip(rows["live_1t_s"], rows["fast_1t_s"], strict=True)]
    print(
        f"  live charts: wall {statistics.median(overhead):+.1%} vs headless (median of paired "
        f"runs); time inside the callback {med['callback_share']:.2%} of the run; target < 10 %"
    )
    print(
        f"  shapes: {med['shapes_1t_s']:.1f} s incl. generating the set "
        f"({med['shapes_gen_s']:.1f} s), acc {med['shapes_1t_acc']:.4f}; target ≥ 0.95 in 30 s"
    )
    if torch.cuda.is_available():
        cuda_s = [run_fast(data, seed=i, threads=None, device="cuda")[2] for i in range(3)]
        ips = TrainConfig().epochs * len(data.train_y) / statistics.median(cuda_s)
        print(
            f"  CUDA fast: {statistics.median(cuda_s):.2f} s, ~{ips:.0f} img/s (incl. set-up), "
            f"{med['fast_all_s'] / statistics.median(cuda_s):.1f}× the CPU"
        )
    print(load())


if __name__ == "__main__":
    main()

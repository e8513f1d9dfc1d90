"""Training speed: the "fast" preset through cnnlab.training against the classic tutorial loop.

Runs, in the same process and interleaved (so a busy machine slows both alike), ``--repeats``
times each:

1. the reference: the classic PyTorch MNIST tutorial network and loop (a ``DataLoader`` with
   batch 64, Adam 1e-3, 4 epochs), as in ``shared/bench/reference_loop.py``;
2. the ``fast`` preset through :func:`cnnlab.training.train` with the default ``TrainConfig``
   (all 8,000 images for training: ``val_fraction=0``);
3. the same with a "live charts" callback that buffers every step's progress and writes it to
   SQLite (WAL) every 100 ms, as the training worker does;
4. the ``fast`` preset on the embedded shapes set (generation + training, default settings).

Data: MNIST t10k, first 8,000 images to train, last 2,000 to test. Prints each run, then
medians, the speed-up ratio and the machine's load. Usage:

    python benchmarks/train_speed.py [--data ../shared/data/mnist-t10k] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnnlab.data import load_dataset, make_shapes
from cnnlab.models import PRESETS, build_model
from cnnlab.training import Progress, TrainConfig, train

REPO = Path(__file__).resolve().parents[1]


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


def run_fast(data, seed: int, device: str | None = None, on_step=None) -> tuple[float, float]:
    """The fast preset with the default config on all training images: (seconds, accuracy)."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = build_model(PRESETS["fast"], data.input_shape, data.num_classes)
    result = train(
        model, data, TrainConfig(val_fraction=0, seed=seed, device=device), on_step=on_step
    )
    return time.perf_counter() - t0, result.test.accuracy


def run_shapes(seed: int) -> tuple[float, float, float]:
    """Generate the shapes set and train the fast preset: (gen seconds, total seconds, acc)."""
    t0 = time.perf_counter()
    data = make_shapes(seed=seed)
    generated = time.perf_counter() - t0
    torch.manual_seed(seed)
    model = build_model(PRESETS["fast"], data.input_shape, data.num_classes)
    result = train(model, data, TrainConfig(seed=seed))
    return generated, time.perf_counter() - t0, result.test.accuracy


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} CPUs"


def main() -> None:
    """Run the benchmark and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO / "../shared/data/mnist-t10k")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-reference", action="store_true", help="only the fast runs")
    args = parser.parse_args()
    data = load_dataset("mnist", data_dir=args.data)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {load()}")
    rows: dict[str, list[float]] = {
        k: [] for k in ("ref_s", "ref_acc", "fast_s", "fast_acc", "live_s", "live_acc")
    }
    rows |= {"cb_share": [], "shapes_gen_s": [], "shapes_s": [], "shapes_acc": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            if not args.skip_reference:
                s, acc = reference_loop(args.data)
                rows["ref_s"].append(s)
                rows["ref_acc"].append(acc)
                print(f"[{i}] reference loop   {s:7.1f} s  test acc {acc:.4f}", flush=True)
            s, acc = run_fast(data, seed=i)
            rows["fast_s"].append(s)
            rows["fast_acc"].append(acc)
            print(f"[{i}] fast (headless)  {s:7.1f} s  test acc {acc:.4f}", flush=True)
            live = LiveCharts(os.path.join(tmp, f"live{i}.db"))
            s, acc = run_fast(data, seed=i, on_step=live)
            live.close()
            rows["live_s"].append(s)
            rows["live_acc"].append(acc)
            rows["cb_share"].append(live.seconds / s)
            print(
                f"[{i}] fast (live)      {s:7.1f} s  test acc {acc:.4f}  "
                f"callback {live.seconds * 1000:.0f} ms in all, {live.writes} SQLite writes",
                flush=True,
            )
            gen, s, acc = run_shapes(seed=i)
            rows["shapes_gen_s"].append(gen)
            rows["shapes_s"].append(s)
            rows["shapes_acc"].append(acc)
            print(f"[{i}] shapes           {s:7.1f} s  test acc {acc:.4f}  (gen {gen:.1f} s)")
            print(f"    {load()}", flush=True)
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    print("\nmedians over", args.repeats, "runs:")
    if "ref_s" in med:
        print(f"  reference loop  {med['ref_s']:7.1f} s   acc {med['ref_acc']:.4f}")
    print(
        f"  fast preset     {med['fast_s']:7.1f} s   acc {med['fast_acc']:.4f}  "
        f"(min acc {min(rows['fast_acc']):.4f})"
    )
    if "ref_s" in med:
        ratios = [r / f for r, f in zip(rows["ref_s"], rows["fast_s"], strict=True)]
        print(
            f"  speed-up        {med['ref_s'] / med['fast_s']:.1f}× (ratio of medians); "
            f"per-run {', '.join(f'{r:.1f}×' for r in ratios)} (target ≥ 8×, acc ≥ 0.99)"
        )
    overhead = [lv / h - 1 for lv, h in zip(rows["live_s"], rows["fast_s"], strict=True)]
    print(
        f"  live charts     {med['live_s']:7.1f} s   wall overhead median "
        f"{statistics.median(overhead):+.1%}; time inside the callback "
        f"{med['cb_share']:.2%} of the run (target < 10 %)"
    )
    print(
        f"  shapes          {med['shapes_s']:7.1f} s   acc {med['shapes_acc']:.4f}  "
        f"(generation {med['shapes_gen_s']:.1f} s; target ≥ 0.95 within 30 s)"
    )
    if torch.cuda.is_available():
        cuda_s = [run_fast(data, seed=i, device="cuda")[0] for i in range(args.repeats)]
        ips = TrainConfig().epochs * len(data.train_y) / statistics.median(cuda_s)
        print(
            f"  CUDA fast       {statistics.median(cuda_s):7.2f} s   "
            f"~{ips:.0f} img/s, {med['fast_s'] / statistics.median(cuda_s):.1f}× the CPU"
        )
    print(load())


if __name__ == "__main__":
    main()

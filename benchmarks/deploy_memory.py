"""What one container of deploy/ needs: memory of a warm idle web process and of a training run.

The resource requests and limits in ``deploy/k8s/`` and the sizing in ``deploy/README.md`` come
from these numbers (and from ``benchmarks/classroom.py`` for a class under load). Printed, each
the median of ``--repeats``:

- baseline: peak RSS of ``python -c "import torch"`` (the interpreter and torch, what every
  process of the image pays), measured in the same run; the other rows are also given as × it;
- worker: one page-default training run (``python -m cnnlab.train --preset fast --dataset
  shapes --threads 1``: the same ``execute`` a worker process calls, on one torch thread as
  ``CNNLAB_WORKER_THREADS`` sets): peak RSS, wall time and CPU seconds (user + system);
- web: one Streamlit process (``CNNLAB_LOCAL_WORKERS=0``, no training workers of its own) after
  the warm-up of ``scripts/serving/warmup.py`` (every page, every widget one step and back): RSS
  when idle and its peak, then RSS with ``--sessions`` more sessions open on the home page
  (MB per open session).

Each process gets its own temporary data directory (SQLite store); loopback only.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.serving.st_ws import StreamlitSession  # noqa: E402
from scripts.serving.warmup import wait_healthy, warm  # noqa: E402


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Run ``cmd`` to its end: its peak RSS (MB), wall seconds and CPU seconds (with children)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    return usage.ru_maxrss / 1024, time.monotonic() - start, usage.ru_utime + usage.ru_stime


def status_mb(pid: int, field: str) -> float:
    """``VmRSS`` or ``VmHWM`` (peak) of a live process, in MB."""
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(found[1]) / 1024 if found else 0.0


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_web(env: dict[str, str], sessions: int, widgets: bool) -> dict[str, float]:
    """RSS of one warm, idle web process, and per extra open session."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "scripts.serving.streamlit_nodelay", "run", "app.py",
        "--server.port", str(port), "--server.address", "127.0.0.1",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, timeout=180)
        warm(url, widgets=widgets)
        time.sleep(2)  # let the warm-up session's last rerun settle
        idle = status_mb(proc.pid, "VmRSS")
        peak = status_mb(proc.pid, "VmHWM")
        opened = []
        try:
            for _ in range(sessions):
                session = StreamlitSession(url).open()
                opened.append(session)
                session.run_page("")
            loaded = status_mb(proc.pid, "VmRSS")
        finally:
            for session in opened:
                session.close()
        per_session = (loaded - idle) / sessions if sessions else float("nan")
        return {"idle": idle, "peak": peak, "per_session": per_session}
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    """Print the medians (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sessions", type=int, default=20, help="extra sessions opened on the web")
    p.add_argument("--max-steps", type=int, help="cap the training run (smoke runs only)")
    p.add_argument("--no-widgets", action="store_true", help="warm pages only (smoke runs)")
    args = p.parse_args()

    rows: dict[str, list[tuple[float, ...]]] = {"baseline": [], "worker": [], "web": []}
    train = [sys.executable, "-m", "cnnlab.train", "--preset", "fast", "--dataset", "shapes"]
    train += ["--threads", "1"] + (["--max-steps", str(args.max_steps)] if args.max_steps else [])
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as data:
            env = {
                **os.environ,
                "CNNLAB_DATA_DIR": data,
                "CNNLAB_LOCAL_WORKERS": "0",
                # The same before the worker service exists: no workers spawned by the web.
                "CNNLAB_EXTERNAL_WORKERS": "1",
                "OMP_NUM_THREADS": "1",
            }
            rows["baseline"].append(run_measured([sys.executable, "-c", "import torch"], env))
            rows["worker"].append(run_measured(train, env))
            web = measure_web(env, args.sessions, widgets=not args.no_widgets)
            rows["web"].append((web["idle"], web["peak"], web["per_session"]))
        print(f"repeat {i + 1}/{args.repeats} done", file=sys.stderr, flush=True)

    def median(name: str, column: int) -> float:
        return statistics.median(row[column] for row in rows[name])

    base = median("baseline", 0)
    print(f"baseline  python + import torch: peak RSS {base:.0f} MB")
    w_rss, w_wall, w_cpu = (median("worker", c) for c in range(3))
    print(
        f"worker    page-default run, 1 thread: peak RSS {w_rss:.0f} MB ({w_rss / base:.1f}×), "
        f"{w_wall:.1f} s wall, {w_cpu:.1f} CPU s"
    )
    idle, peak, per = (median("web", c) for c in range(3))
    print(
        f"web       warm idle: RSS {idle:.0f} MB ({idle / base:.1f}×), peak {peak:.0f} MB "
        f"({peak / base:.1f}×); +{per:.1f} MB per open session ({args.sessions} opened)"
    )


if __name__ == "__main__":
    main()

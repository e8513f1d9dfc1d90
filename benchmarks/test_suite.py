"""Wall-clock and CPU time of the README's test command (issue 13: ≤ 6 minutes, quiet 2-core box).

Runs the whole suite as ``scripts/test.sh`` does, once per variant, in this checkout's ``.venv``:

- *setup*: what ``scripts/test.sh`` does before pytest on an existing ``.venv`` (pip checks the
  pinned set, the editable install is checked), i.e. what every run of the command pays;
- *serial*: ``pytest -p no:xdist`` (one process);
- *workers*: ``pytest -n 2 --dist loadfile --no-loadscope-reorder`` (the command's default:
  pytest-xdist, each file's tests on one worker; ``--workers N`` for another count).

For each: wall time, CPU time (user + system of pytest and every process it waited for: servers,
workers, the browser) and CPU / wall (how many of the cores the run kept busy), the outcome
counts and the 15 slowest test phases; the last line is the ratio of the default to serial.
Run on a quiet machine: ``.venv/bin/python benchmarks/test_suite.py [--only serial|workers]``
(test files as arguments time only those). Compare worker counts in the same session, one
variant after the other, several times: this machine's speed drifts by ±10 % between runs.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
SETUP = "source scripts/lib.sh && install_requirements requirements-dev.txt && install_cnnlab"


@dataclass
class Result:
    name: str
    wall: float
    cpu: float
    summary: str
    slowest: list[str]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(name: str, command: list[str]) -> Result:
    cpu, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    lines = proc.stdout.splitlines()
    summary = next((x.strip("= ") for x in reversed(lines) if re.search(r" in [\d.]+s", x)), "")
    if proc.returncode not in (0, 1) or not (summary or proc.returncode == 0):
        summary = f"exit {proc.returncode}: {(proc.stdout + proc.stderr)[-300:]}"
    slowest = [x for x in lines if re.match(r"^\d+\.\d+s (call|setup|teardown) ", x)][:15]
    return Result(name, wall, cpu, summary, slowest)


def main() -> None:
    """Measure and print each variant."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["serial", "workers"], help="one variant (and setup)")
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (default 2)")
    parser.add_argument("tests", nargs="*", help="test files (default: the whole suite)")
    args = parser.parse_args()
    pytest = [str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=15"]
    pytest += args.tests
    workers = ["-n", str(args.workers), "--dist", "loadfile", "--no-loadscope-reorder"]
    variants = {"serial": [*pytest, "-p", "no:xdist"], "workers": [*pytest, *workers]}
    results = [_run("setup", ["bash", "-c", SETUP])]
    for name, command in variants.items():
        if args.only in (None, name):
            results.append(_run(name, command))
    for r in results:
        print(f"{r.name:>8}: wall {r.wall:6.1f} s, CPU {r.cpu:6.1f} s ({r.cpu / r.wall:.2f} cores)")
        print(f"          {r.summary}")
        for line in r.slowest:
            print(f"          {line}")
    timed = {r.name: r.wall for r in results}
    if {"serial", "workers"} <= timed.keys():
        print(
            f"{args.workers} workers / serial: {timed['workers'] / timed['serial']:.2f}; the "
            f"README command (setup + workers): {(timed['setup'] + timed['workers']) / 60:.1f} min"
        )


if __name__ == "__main__":
    sys.exit(main())

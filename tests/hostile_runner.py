"""Run hostile-input cases by id, each in a fresh fork, and report what each did as JSON lines.

Started by tests/test_hostile_corpus.py in a scratch folder (its working directory, with the data
directory and TMPDIR inside). The engine is imported once here; every case then runs in a fork
of this process, so one case's freed memory cannot hide the next one's peak. A case's peak extra
memory is the rise of the fork's high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs`` once its input is built) and, for work it hands to child processes
(the zip reader's sandbox), the largest child's peak resident size.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import time
from pathlib import Path

import torch
from hostile_cases import CASES, ENTRIES

import cnnlab.class_folders
import cnnlab.data
import cnnlab.images
import cnnlab.kernels
import cnnlab.models
import cnnlab.training
import cnnlab.uploads

TIMEOUT_S = 30.0
# The budget is CPU time (the case's own and its children's): on a busy machine (a shared 2-core
# box running several test suites) a 5 s case can take a minute of wall time. Wall time only
# catches a case that hangs without computing, long after any honest one.
WALL_BACKSTOP_S = 10 * TIMEOUT_S

# The FLOP counter's first use imports half of torch's compiler stack (seconds): once, here. It
# runs on the meta device, so no thread pool exists yet to be broken by the forks.
cnnlab.models.summarize(cnnlab.models.PRESETS["fast"], (1, 28, 28), 10)
_BY_ID = {case.id: case for case in CASES}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _cpu_seconds() -> float:
    """CPU time of this process and of the children it has waited for (the zip sandbox)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _run(case_id: str) -> dict:
    """In the fork: build the input, reset the high-water mark, call the entry point."""
    case = _BY_ID[case_id]
    value = case.make()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    base = _status_kb("VmRSS")
    started = time.monotonic()
    cpu_started = _cpu_seconds()
    report: dict = {"id": case_id}
    try:
        result = ENTRIES[case.entry](value)
        report["outcome"] = "ok"
        if case.check is not None:
            try:
                case.check(result)
            except Exception as exc:
                report["check_error"] = f"{type(exc).__name__}: {exc}"
    except ValueError as exc:
        report |= {"outcome": "refused", "message": str(exc)}
    except BaseException as exc:
        report |= {"outcome": "error", "type": type(exc).__name__, "message": str(exc)[:500]}
    report["seconds"] = time.monotonic() - started
    report["cpu_seconds"] = _cpu_seconds() - cpu_started
    report["extra_kb"] = _status_kb("VmHWM") - base
    report["children_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return report


def _fork_case(case_id: str) -> dict:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the case's own process
        os.close(read_end)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # a chatty case cannot break the protocol
        torch.set_num_threads(1)
        try:
            payload = json.dumps(_run(case_id)).encode()
        except BaseException as exc:
            payload = json.dumps(
                {"id": case_id, "outcome": "error", "type": type(exc).__name__,
                 "message": str(exc)[:500]}
            ).encode()  # fmt: skip
        with os.fdopen(write_end, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + WALL_BACKSTOP_S
    chunks = []
    with os.fdopen(read_end, "rb") as pipe:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([pipe], [], [], max(left, 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return {"id": case_id, "outcome": "timeout"}
            chunk = os.read(pipe.fileno(), 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return {"id": case_id, "outcome": "crashed", "status": status}
    return json.loads(b"".join(chunks))


def _strays(root: Path) -> list[str]:
    """Anything in the scratch folder (the working directory) outside the data directory."""
    return [p.name for p in root.iterdir() if p.name != "data"]


def main() -> None:
    root = Path.cwd()
    for line in sys.stdin:
        case_id = line.strip()
        if not case_id:
            continue
        report = _fork_case(case_id)
        report["strays"] = _strays(root)
        sys.stdout.write(json.dumps(report) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Run one untrusted decoding job in a child process with CPU, memory and wall-time budgets.

Reading a learner's zip of images can cost minutes of CPU and a lot of memory whatever limits
the file format allows; inside the web server it would also be uncancellable. Here the job runs
in a fresh ``python -m cnnlab.sandbox`` that first caps itself (``RLIMIT_CPU``, ``RLIMIT_AS``),
then imports the job; the parent waits with a wall-clock deadline, polls a ``cancelled`` callback
(the learner's session went away) and kills the child when either ends it. The job is
``module:function`` taking ``(payload: bytes, options: dict)`` and returning ``bytes``; a
``ValueError`` it raises comes back as a ``ValueError`` with the same sentence.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

_REFUSED = 3  # exit status: the job raised ValueError, its message is on stdout
_OUT_OF_MEMORY = 4
_POLL_S = 0.2


@dataclass(frozen=True)
class Budget:
    """What one job may spend: CPU seconds, address space in bytes and wall-clock seconds."""

    cpu_seconds: int
    memory_bytes: int
    wall_seconds: float


def env_budget(prefix: str, cpu_seconds: int, memory_mb: int, wall_seconds: float) -> Budget:
    """A :class:`Budget` from ``{prefix}_CPU_S``, ``_MEMORY_MB``, ``_TIMEOUT_S`` or defaults."""
    return Budget(
        _env_number(f"{prefix}_CPU_S", cpu_seconds),
        _env_number(f"{prefix}_MEMORY_MB", memory_mb) * 1024 * 1024,
        _env_number(f"{prefix}_TIMEOUT_S", wall_seconds),
    )


def _env_number(name: str, default: float) -> int:
    raw = os.environ.get(name)
    if not raw:
        return int(default)
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"The setting {name} must be a whole number, not {raw!r}.") from None
    if value < 1:
        raise ValueError(f"The setting {name} must be at least 1, not {value}.")
    return value


def run(
    job: str,
    payload: bytes,
    options: dict,
    budget: Budget,
    what: str,
    cancelled: Callable[[], bool] | None = None,
) -> bytes:
    """Run ``job`` on ``payload`` in a budgeted child; its result bytes, or ``ValueError``.

    ``what`` names the work for the learner ("Reading your zip"). The child is killed when the
    wall-clock budget is spent or ``cancelled()`` turns true.
    """
    command = [
        sys.executable, "-m", "cnnlab.sandbox", job,
        str(budget.cpu_seconds), str(budget.memory_bytes), json.dumps(options),
    ]  # fmt: skip
    # One thread per numeric library: the budget is per process, and a class shares the cores.
    threads = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    # The child imports cnnlab from this checkout whatever the caller's working directory.
    root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, **threads, "PYTHONPATH": path}
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    waited = 0.0
    try:
        while True:
            try:
                # The payload goes with the first call only; later calls resume the same I/O.
                out, _ = proc.communicate(None if waited else payload, timeout=_POLL_S)
                break
            except subprocess.TimeoutExpired:
                waited += _POLL_S
            if waited >= budget.wall_seconds:
                raise ValueError(
                    f"{what} took longer than {budget.wall_seconds:.0f} s, the limit, and was "
                    "stopped. Use fewer or smaller images."
                )
            if cancelled is not None and cancelled():
                raise ValueError(f"{what} was stopped: the page was closed.")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return _outcome(proc.returncode, out, budget, what)


def _outcome(code: int, out: bytes, budget: Budget, what: str) -> bytes:
    if code == 0:
        return out
    if code == _REFUSED:
        raise ValueError(out.decode("utf-8", "replace"))
    if code == _OUT_OF_MEMORY:
        raise ValueError(
            f"{what} needed more than {budget.memory_bytes // 2**20} MB of memory, the limit. "
            "Use fewer or smaller images."
        )
    if code in (-9, -24):  # SIGKILL, SIGXCPU: the CPU budget ran out
        raise ValueError(
            f"{what} needed more than {budget.cpu_seconds} s of computing, the limit, and was "
            "stopped. Use fewer or smaller images."
        )
    raise ValueError(f"{what} failed unexpectedly. Check the file and try again.")


def _limit_self(cpu_seconds: int, memory_bytes: int) -> None:
    """Cap this process before any untrusted byte is looked at."""
    # The hard CPU limit a second later turns a job that ignores SIGXCPU into a SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str]) -> int:
    """Child side: limit, run the job on stdin, write its bytes (or its refusal) to stdout."""
    job, cpu_seconds, memory_bytes, options = argv
    _limit_self(int(cpu_seconds), int(memory_bytes))
    module, function = job.split(":")
    payload = sys.stdin.buffer.read()
    try:
        result = getattr(import_module(module), function)(payload, json.loads(options))
    except ValueError as exc:
        sys.stdout.buffer.write(str(exc).encode())
        return _REFUSED
    except MemoryError:
        return _OUT_OF_MEMORY
    sys.stdout.buffer.write(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

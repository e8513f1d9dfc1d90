"""Training jobs off the request path: a server-wide queue feeding worker processes.

Why worker processes: a Python-heavy training loop in a Streamlit script thread holds the GIL and
stalls every other session on a 2-core machine, and it would keep running after the learner
leaves. So each run trains in ``python -m cnnlab.worker RUN_ID`` (a fresh interpreter: no fork of
a threaded server, nothing of Streamlit imported), which reads its job from the runs store, writes
progress back to it, and polls it for stop requests. The page only reads the store.

Design (one server process today):
- The **queue is the database**: a submitted run is a row with status "queued". The
  :class:`Scheduler` (one per server process, a daemon thread started lazily by
  :func:`get_scheduler`) claims queued rows with one IMMEDIATE transaction that also counts the
  running rows (:meth:`SqliteRunStore.claim_next`), launches a worker per claimed run, and reaps
  workers: a crash is recorded as "failed" with the worker's last words, a run past its time
  budget is killed and recorded as "timed_out".
- **Scale-out**: several server processes may share one data directory. Each runs its own
  scheduler; the cap and the order hold across them because claiming is a transaction on the
  shared file, and each process supervises only the workers it launched (orphans of a process
  that died are found by pid on the same host or a stale heartbeat elsewhere, and marked
  "interrupted", resumable from their last checkpoint). A server database would implement the
  same claim with ``SELECT … FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.runs import ACTIVE_STATUSES, Run, SqliteRunStore, default_data_dir, pid_alive

WORKER_LOG = "worker.log"


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number.") from None


@dataclass(frozen=True)
class Limits:
    """What one server allows: simultaneous runs, time per run, model size, worker threads."""

    max_concurrent: int
    time_budget_s: float
    max_params: int
    max_memory_bytes: int
    worker_threads: int

    @classmethod
    def from_env(cls) -> Limits:
        """Defaults, overridden by ``CNNLAB_MAX_CONCURRENT_RUNS``, ``CNNLAB_RUN_TIME_BUDGET_S``,
        ``CNNLAB_MAX_PARAMS``, ``CNNLAB_MAX_MEMORY_MB`` and ``CNNLAB_WORKER_THREADS``."""
        # Leave one core to the web server so pages stay responsive while a class trains.
        cores = os.cpu_count() or 1
        return cls(
            max_concurrent=max(1, int(_env_number("CNNLAB_MAX_CONCURRENT_RUNS", cores - 1))),
            time_budget_s=_env_number("CNNLAB_RUN_TIME_BUDGET_S", 15 * 60),
            max_params=int(_env_number("CNNLAB_MAX_PARAMS", 5_000_000)),
            max_memory_bytes=int(_env_number("CNNLAB_MAX_MEMORY_MB", 1024) * 2**20),
            # One torch thread per worker: with two, any other busy process (the web server)
            # slows training 2.4–12× on this machine (shared/PERF-NOTES.md).
            worker_threads=max(1, int(_env_number("CNNLAB_WORKER_THREADS", 1))),
        )


def _megabytes(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"


def check_limits(
    spec: Any, input_shape: tuple[int, int, int], num_classes: int, batch_size: int, limits: Limits
) -> Any:
    """Refuse a model too big for ``limits`` before anything is allocated; return the estimate.

    Uses :func:`cnnlab.models.estimate_memory` on the meta device; raises ``ValueError`` with
    the numbers and a way out.
    """
    from cnnlab.models import estimate_memory

    est = estimate_memory(spec, input_shape, num_classes, batch_size)
    if est.params > limits.max_params:
        raise ValueError(
            f"This model has {est.params:,} parameters; this server allows at most "
            f"{limits.max_params:,}. Use fewer filters or a smaller linear layer (pooling "
            f"before the flatten shrinks the first linear layer a lot)."
        )
    if est.total_bytes > limits.max_memory_bytes:
        raise ValueError(
            f"One training step with batch {batch_size} needs about "
            f"{_megabytes(est.total_bytes)} (activations {_megabytes(est.activation_bytes)}, "
            f"weights, gradients and optimizer state "
            f"{_megabytes(est.param_bytes + est.grad_bytes + est.optimizer_bytes)}); this "
            f"server allows {_megabytes(limits.max_memory_bytes)}. Use a smaller batch size or "
            f"fewer filters."
        )
    return est


@dataclass
class _Worker:
    run_id: str
    proc: subprocess.Popen
    started: float
    log: Path


class Scheduler:
    """Claims queued runs up to the cap, launches a worker process per run, and reaps them."""

    def __init__(
        self,
        store: SqliteRunStore,
        limits: Limits | None = None,
        poll_s: float = 0.25,
        grace_s: float | None = None,
        worker_command: tuple[str, ...] = (sys.executable, "-m", "cnnlab.worker"),
    ) -> None:
        self.store = store
        self.limits = limits or Limits.from_env()
        self.poll_s = poll_s
        # A worker enforces its own budget (it stops cleanly and keeps its checkpoint); the
        # grace period only catches a worker that hangs, which is then killed.
        self.grace_s = grace_s if grace_s is not None else max(5.0, 0.1 * self.limits.time_budget_s)
        self.worker_command = worker_command
        self._workers: dict[str, _Worker] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the page calls ---------------------------------------------------------------
    def submit(
        self,
        owner: str,
        *,
        dataset: str,
        config: Mapping[str, Any],
        spec: Any,
        input_shape: tuple[int, int, int],
        num_classes: int,
        name: str = "",
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        """Check the limits, then queue a run for ``owner``; returns its id.

        Raises ``ValueError`` (with a sentence for the learner) when the model is too big or
        the owner already has a run queued or training.
        """
        check_limits(spec, input_shape, num_classes, int(config["batch_size"]), self.limits)
        if self.store.list_runs(owner, ACTIVE_STATUSES):
            raise ValueError(
                "You already have a run queued or training: wait for it, or stop it first."
            )
        run_id = self.store.create_run(
            owner,
            dataset=dataset,
            config=config,
            spec=spec.to_dict(),
            name=name,
            meta={
                **dict(meta or {}),
                "input_shape": list(input_shape),
                "num_classes": num_classes,
            },
        )
        self.wake()
        return run_id

    def resume(self, owner: str, run_id: str) -> None:
        """Queue the owner's interrupted/stopped run again, to continue from its checkpoint."""
        if self.store.list_runs(owner, ACTIVE_STATUSES):
            raise ValueError("You already have a run queued or training: stop it first.")
        self.store.request_resume(owner, run_id)
        self.wake()

    def queue_position(self, run_id: str) -> int | None:
        """1 for the next run to start, 2 for the one after…; None when not queued."""
        for position, run in enumerate(self.store.queue(), start=1):
            if run.run_id == run_id:
                return position
        return None

    def wake(self) -> None:
        """Make the supervisor look at the queue now instead of at its next poll."""
        self._wake.set()

    # -- supervision -----------------------------------------------------------------------
    def start(self) -> Scheduler:
        """Mark orphaned runs interrupted, then supervise in a daemon thread."""
        with self._lock:
            if self._thread is None:
                self.store.mark_interrupted()
                self._thread = threading.Thread(
                    target=self._loop, name="cnnlab-scheduler", daemon=True
                )
                self._thread.start()
        return self

    def shutdown(self, kill_workers: bool = True) -> None:
        """Stop supervising (and kill the workers this scheduler launched)."""
        self._halt.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if kill_workers:
            with self._lock:
                for run_id, worker in list(self._workers.items()):
                    if worker.proc.poll() is None:
                        worker.proc.kill()
                        worker.proc.wait()
                    self._finish_if_running(
                        run_id, "interrupted", "The server stopped while this run was training."
                    )
                    del self._workers[run_id]

    def _loop(self) -> None:
        while not self._halt.is_set():
            try:
                self.tick()
            except Exception as exc:  # the supervisor must outlive a locked or broken database
                print(f"cnnlab scheduler: {exc!r}", file=sys.stderr)
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def tick(self) -> None:
        """One supervision round: reap ended workers, enforce budgets, start queued runs."""
        with self._lock:
            self._reap()
            self.store.mark_interrupted(alive=self._alive)
            if not self._halt.is_set():
                while run := self.store.claim_next(self.limits.max_concurrent):
                    self._launch(run)

    def _alive(self, pid: int) -> bool:
        for worker in self._workers.values():
            if worker.proc.pid == pid:
                return worker.proc.poll() is None
        return pid_alive(pid)

    def _launch(self, run: Run) -> None:
        log = self.store.run_dir(run.run_id) / WORKER_LOG
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "CNNLAB_DATA_DIR": str(self.store.data_dir),
            "CNNLAB_RUN_TIME_BUDGET_S": str(self.limits.time_budget_s),
            "CNNLAB_WORKER_THREADS": str(self.limits.worker_threads),
            # Bound the BLAS/OpenMP pools before torch starts, not only torch's own.
            "OMP_NUM_THREADS": str(self.limits.worker_threads),
            "MKL_NUM_THREADS": str(self.limits.worker_threads),
            "PYTHONUNBUFFERED": "1",
        }
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [*self.worker_command, run.run_id],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=Path(__file__).resolve().parents[1],
            )
        self._workers[run.run_id] = _Worker(run.run_id, proc, time.monotonic(), log)
        self.store.update_status(run.run_id, "running", worker_pid=proc.pid)

    def _reap(self) -> None:
        for run_id, worker in list(self._workers.items()):
            code = worker.proc.poll()
            over = time.monotonic() - worker.started > self.limits.time_budget_s + self.grace_s
            if code is None and over:
                worker.proc.send_signal(signal.SIGKILL)
                worker.proc.wait()
                self._finish_if_running(
                    run_id,
                    "timed_out",
                    f"The run went past this server's time budget of "
                    f"{self.limits.time_budget_s:.0f} s and was stopped.",
                )
            elif code is not None:
                self._finish_if_running(
                    run_id,
                    "failed",
                    f"The training process ended unexpectedly (exit code {code}). "
                    f"{_tail(worker.log)}".strip(),
                )
            else:
                continue
            del self._workers[run_id]

    def _finish_if_running(self, run_id: str, status: str, error: str) -> None:
        try:
            run = self.store.load_run(run_id)
        except KeyError:
            return  # deleted meanwhile
        if run.status == "running":
            self.store.finish(run_id, status, final=run.final, error=error)

    def running_workers(self) -> list[str]:
        """Run ids of the workers this scheduler is supervising."""
        with self._lock:
            return list(self._workers)


def _tail(log: Path, lines: int = 6) -> str:
    """The last lines of a worker's log: usually the exception that killed it."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


_SCHEDULER: Scheduler | None = None
_SCHEDULER_LOCK = threading.Lock()


def get_scheduler() -> Scheduler:
    """The server-wide scheduler, created and started on first use (shared by all sessions)."""
    global _SCHEDULER
    with _SCHEDULER_LOCK:
        data_dir = default_data_dir()
        # A changed data directory (tests) gets a fresh scheduler rather than a stale one.
        if _SCHEDULER is not None and _SCHEDULER.store.data_dir != data_dir:
            _SCHEDULER.shutdown(kill_workers=False)
            _SCHEDULER = None
        if _SCHEDULER is None:
            _SCHEDULER = Scheduler(SqliteRunStore(data_dir)).start()
        return _SCHEDULER


def shutdown_scheduler() -> None:
    """Stop the server-wide scheduler and its workers (their runs become "interrupted")."""
    global _SCHEDULER
    with _SCHEDULER_LOCK:
        if _SCHEDULER is not None:
            _SCHEDULER.shutdown()
            _SCHEDULER = None

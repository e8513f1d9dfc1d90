"""Training jobs off the request path: a server-wide queue feeding a pool of worker processes.

Why worker processes: a Python-heavy training loop in a Streamlit script thread holds the GIL and
stalls every other session on a 2-core machine, and it would keep running after the learner
leaves. So runs train in ``python -m cnnlab.worker --serve`` processes (fresh interpreters: no
fork of a threaded server, nothing of Streamlit imported), which claim queued runs from the runs
store one after another, write progress back to it, and poll it for stop requests. The page only
reads the store.

Why a pool of long-lived workers rather than one process per run: starting an interpreter and
importing torch costs seconds on this machine, more than training the default network does. A
worker pays it once and then trains run after run (keeping the data sets it loaded), so a class
of thirty pressing Train within a minute is served in minutes, not a quarter of an hour.

Design:
- The **queue is the database**: a submitted run is a row with status "queued". Fair-use caps
  (runs per browser, per client address, queue length) are checked in the transaction that
  inserts it. A worker claims the next run with one IMMEDIATE transaction that also counts the
  running rows (:meth:`cnnlab.runs.SqlRunStore.claim_next`), so the concurrency cap holds however
  many workers, server processes and machines share the store; the order is round-robin across
  owners.
- The :class:`Scheduler` (one per server process, a daemon thread started lazily by
  :func:`get_scheduler`) keeps enough workers alive for the queue, up to the cap, and supervises
  them: a worker that dies takes only its own run with it ("failed", with the worker's last
  words), a worker hung past its run's time budget is killed ("timed_out"), and orphans of a
  server process that died are marked "interrupted", resumable from their last checkpoint.
  Workers leave by themselves when idle, when their server is gone, or after a number of runs.
- Past one machine (``$CNNLAB_DATABASE_URL``: PostgreSQL), web processes run no workers
  (``CNNLAB_LOCAL_WORKERS=0``) and worker pools (:func:`serve_pool`, ``python -m cnnlab.worker
  --serve``) train on other machines. A worker heartbeats while it trains; any scheduler marks
  a run whose heartbeat went stale "interrupted" (its machine or pool was lost), resumable from
  its last checkpoint. Process ids are only checked on their own host (:func:`runs.host_id`).
"""

from __future__ import annotations

import atexit
import dataclasses
import ipaddress
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

from cnnlab.queue_estimate import QueueEstimate, estimate
from cnnlab.runs import QueueCaps, Run, RunStore, host_id, open_store, pid_alive
from cnnlab.wording import plural

WORKERS_DIR = "workers"  # under the data directory: one log per worker process
RUN_MARK = "== cnnlab run "  # a worker's log line before each run it trains
SPAWN_BACKOFF_S = 5.0  # after a worker failed on its own, before starting another


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number.") from None


def step_cap() -> int | None:
    """The server-wide cap on every run's training steps (``CNNLAB_MAX_STEPS``: tests, a
    teacher's quick demo), or None."""
    cap = int(_env_number("CNNLAB_MAX_STEPS", 0))
    return max(1, cap) if cap else None


def spare_cores() -> int:
    """Cores this process may use, less one for the web server (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


@dataclass(frozen=True)
class Limits:
    """What one server allows: simultaneous runs, time per run, model size, worker threads,
    fair-use caps on the queue, and how long a worker process lives."""

    max_concurrent: int
    time_budget_s: float
    max_params: int
    max_memory_bytes: int
    worker_threads: int
    compute_budget_s: float | None = None  # per run over all its attempts; None: no limit
    max_per_owner: int = 1
    max_per_client: int = 5
    max_queue: int = 100
    worker_idle_s: float = 300.0
    worker_max_runs: int = 100  # a worker is replaced after this many runs (0: never)
    # False: this process only queues; worker pools (``python -m cnnlab.worker --serve``) beside
    # it or on other machines train.
    spawn_workers: bool = True
    # The Train page starts a worker when a learner opens it, so the first run skips the
    # worker's start-up (~4 s of CPU); off where pages open far more often than runs start.
    # Off also means a new worker takes runs without warming up first (cnnlab.worker).
    warm_worker: bool = True

    @classmethod
    def from_env(cls) -> Limits:
        """Defaults, overridden by the ``CNNLAB_*`` variables listed in the README."""
        budget = _env_number("CNNLAB_RUN_TIME_BUDGET_S", 15 * 60)
        return cls(
            # Leave one core to the web server so pages stay responsive while a class trains.
            max_concurrent=max(1, int(_env_number("CNNLAB_MAX_CONCURRENT_RUNS", spare_cores()))),
            time_budget_s=budget,
            max_params=int(_env_number("CNNLAB_MAX_PARAMS", 5_000_000)),
            max_memory_bytes=int(_env_number("CNNLAB_MAX_MEMORY_MB", 1024) * 2**20),
            # One torch thread per worker: with two, any other busy process (the web server)
            # slows training 2.4–12× on this machine (shared/PERF-NOTES.md).
            worker_threads=max(1, int(_env_number("CNNLAB_WORKER_THREADS", 1))),
            # Resuming is for finishing a run, not for holding a slot forever.
            compute_budget_s=_env_number("CNNLAB_RUN_COMPUTE_BUDGET_S", 3 * budget) or None,
            max_per_owner=max(1, int(_env_number("CNNLAB_MAX_RUNS_PER_BROWSER", 1))),
            max_per_client=max(1, int(_env_number("CNNLAB_MAX_RUNS_PER_ADDRESS", 5))),
            max_queue=max(1, int(_env_number("CNNLAB_MAX_QUEUE", 100))),
            worker_idle_s=_env_number("CNNLAB_WORKER_IDLE_S", 300),
            worker_max_runs=max(0, int(_env_number("CNNLAB_WORKER_MAX_RUNS", 100))),
            # CNNLAB_EXTERNAL_WORKERS=1 is the older name of CNNLAB_LOCAL_WORKERS=0.
            spawn_workers=bool(_env_number("CNNLAB_LOCAL_WORKERS", 1))
            and not _env_number("CNNLAB_EXTERNAL_WORKERS", 0),
            warm_worker=bool(_env_number("CNNLAB_WARM_WORKER", 1)),
        )

    @property
    def caps(self) -> QueueCaps:
        """The fair-use caps the store checks when a run is queued or resumed."""
        return QueueCaps(
            per_owner=self.max_per_owner,
            per_client=self.max_per_client,
            total=self.max_queue,
            compute_budget_s=self.compute_budget_s,
        )


def client_key(peer: str | None, forwarded_for: str | None = None) -> str | None:
    """The address a fair-use cap counts: the peer, or behind a proxy on this host the address
    the proxy saw; None for this machine itself or when unknown.

    Only the last ``X-Forwarded-For`` entry is used (the one our proxy appended; earlier ones are
    whatever the client sent), and only when the connection itself came from this machine.
    IPv6 addresses count per /64, the block one subscriber usually gets.
    """
    address = peer
    if address is None or _is_loopback(address):
        entries = [e.strip() for e in (forwarded_for or "").split(",") if e.strip()]
        address = entries[-1] if entries else None
    if address is None:
        return None
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None
    if ip.is_loopback:
        return None
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


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
    proc: subprocess.Popen
    log: Path


class Scheduler:
    """Keeps a pool of worker processes for the queue, up to the cap, and supervises them.

    ``slots``: worker processes this pool may run (default: the cap, ``limits.max_concurrent``,
    which counts the runs training in all pools together); ``device``: the pool trains only the
    runs a ``cpu`` or ``cuda`` pool may train (:func:`cnnlab.runs.device_need`).
    """

    def __init__(
        self,
        store: RunStore,
        limits: Limits | None = None,
        poll_s: float = 0.25,
        grace_s: float | None = None,
        worker_command: tuple[str, ...] = (sys.executable, "-m", "cnnlab.worker", "--slot"),
        slots: int | None = None,
        device: str | None = None,
    ) -> None:
        self.store = store
        self.limits = limits or Limits.from_env()
        self.slots = slots or self.limits.max_concurrent
        self.device = device
        self.poll_s = poll_s
        # A worker enforces its own budget (it checkpoints, stops cleanly and evaluates); the
        # grace period only catches a worker that hangs, which is then killed.
        default_grace = max(30.0, 0.2 * self.limits.time_budget_s)
        self.grace_s = grace_s if grace_s is not None else default_grace
        self.worker_command = worker_command
        self._workers: dict[int, _Worker] = {}
        self._spawn_after = 0.0  # monotonic time before which no worker is started
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
        client: str | None = None,
    ) -> str:
        """Check the limits, then queue a run for ``owner`` (from address ``client``); returns
        its id.

        Raises ``ValueError`` (with a sentence for the learner) when the model is too big or a
        fair-use cap is reached (:class:`cnnlab.runs.QueueRefusedError`).
        """
        check_limits(spec, input_shape, num_classes, int(config["batch_size"]), self.limits)
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
            client=client,
            caps=self.limits.caps,
        )
        self.wake()
        return run_id

    def resume(self, owner: str, run_id: str, client: str | None = None) -> None:
        """Queue the owner's ended run again, to continue from its checkpoint (same caps as a
        new run, and within the run's total compute budget)."""
        self.store.request_resume(owner, run_id, client=client, caps=self.limits.caps)
        self.wake()

    def estimate(self, run_id: str) -> QueueEstimate | None:
        """The queued run's position (1: next to start) and expected wait; None when it is
        not queued."""
        return estimate(self.store, run_id, self.limits.max_concurrent)

    def keep_warm(self) -> None:
        """Have one worker ready (imports and warm-up done) before anyone presses Train.

        The Train page calls this on every visit; an unused worker leaves after
        ``limits.worker_idle_s``, and the next visit starts another.
        """
        with self._lock:
            if (
                self.limits.spawn_workers
                and not self._halt.is_set()
                and time.monotonic() >= self._spawn_after
                and not any(w.proc.poll() is None for w in self._workers.values())
            ):
                self._spawn()

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

    def shutdown(self, kill_workers: bool = True, grace_s: float = 15.0) -> None:
        """Stop supervising (and stop the workers this scheduler started).

        Workers get SIGTERM first: a training one checkpoints where it is and ends its run as
        "interrupted", resumable with nothing lost; any still alive after ``grace_s`` is killed.
        """
        self._halt.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if kill_workers:
            with self._lock:
                for worker in self._workers.values():
                    if worker.proc.poll() is None:
                        worker.proc.terminate()
                deadline = time.monotonic() + grace_s
                for pid, worker in list(self._workers.items()):
                    try:
                        worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        worker.proc.kill()
                        worker.proc.wait()
                    run = self._run_of(pid)
                    if run is not None:
                        self._finish(
                            run, "interrupted", "The server stopped while this run was training."
                        )
                    del self._workers[pid]

    def _loop(self) -> None:
        while not self._halt.is_set():
            try:
                self.tick()
            except Exception as exc:  # the supervisor must outlive a locked or broken database
                print(f"cnnlab scheduler: {exc!r}", file=sys.stderr)
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def tick(self) -> None:
        """One supervision round: reap ended workers, kill hung ones, start enough workers."""
        with self._lock:
            self._reap(self._running_here())
            self.store.mark_interrupted(alive=self._alive)
            if not self._halt.is_set():
                self._top_up()

    def _alive(self, pid: int) -> bool:
        worker = self._workers.get(pid)
        return worker.proc.poll() is None if worker is not None else pid_alive(pid)

    def _run_of(self, pid: int) -> Run | None:
        return next((r for r in self._running_here() if r.worker_pid == pid), None)

    def _running_here(self) -> list[Run]:
        """The runs training on this machine: process ids of other machines (other pid
        namespaces) may equal ours, so they never match one of our workers."""
        return [r for r in self.store.running() if r.worker_host == host_id()]

    def _reap(self, running: list[Run]) -> None:
        by_pid = {r.worker_pid: r for r in running if r.worker_pid is not None}
        now = time.time()
        for pid, worker in list(self._workers.items()):
            run = by_pid.get(pid)
            code = worker.proc.poll()
            hung = (
                code is None
                and run is not None
                and now - (run.started_at or now) > self.limits.time_budget_s + self.grace_s
            )
            if hung:
                worker.proc.send_signal(signal.SIGKILL)
                worker.proc.wait()
                self._finish(
                    run,
                    "timed_out",
                    f"The run went past this server's time budget of "
                    f"{self.limits.time_budget_s:.0f} s and was stopped.",
                )
            elif code is not None:
                if run is not None:  # it died training: only its own run is lost
                    self._finish(
                        run,
                        "failed",
                        f"The training process ended unexpectedly (exit code {code}). "
                        f"{_tail(worker.log)}".strip(),
                    )
                elif code == 0:
                    worker.log.unlink(missing_ok=True)  # left idle or recycled: nothing to keep
                else:  # it failed before taking a run: do not restart it in a tight loop
                    self._spawn_after = time.monotonic() + SPAWN_BACKOFF_S
            else:
                continue
            del self._workers[pid]

    def _top_up(self) -> None:
        """Start workers so every run that may start now has one (never more than the cap)."""
        if not self.limits.spawn_workers or time.monotonic() < self._spawn_after:
            return
        if not self.store.has_queued(self.device):
            return
        running = self.store.running()
        busy = {r.worker_pid for r in running if r.worker_host == host_id()}
        free = sum(1 for pid in self._workers if pid not in busy)
        waiting = len(self.store.queue(self.device))
        startable = min(waiting, self.limits.max_concurrent - len(running))
        room = self.slots - len(self._workers)
        for _ in range(max(0, min(startable - free, room))):
            self._spawn()

    def _spawn(self) -> None:
        folder = self.store.data_dir / WORKERS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        limits = self.limits
        env = {
            **os.environ,
            "CNNLAB_DATA_DIR": str(self.store.data_dir),
            "CNNLAB_MAX_CONCURRENT_RUNS": str(limits.max_concurrent),
            "CNNLAB_RUN_TIME_BUDGET_S": str(limits.time_budget_s),
            "CNNLAB_RUN_COMPUTE_BUDGET_S": str(limits.compute_budget_s or 0),
            "CNNLAB_WORKER_THREADS": str(limits.worker_threads),
            "CNNLAB_WORKER_IDLE_S": str(limits.worker_idle_s),
            "CNNLAB_WORKER_MAX_RUNS": str(limits.worker_max_runs),
            "CNNLAB_WORKER_SPAWNED_AT": repr(time.time()),
            "CNNLAB_SERVER_PID": str(os.getpid()),  # the worker leaves when we are gone
            # Bound the BLAS/OpenMP pools before torch starts, not only torch's own.
            "OMP_NUM_THREADS": str(limits.worker_threads),
            "MKL_NUM_THREADS": str(limits.worker_threads),
            "PYTHONUNBUFFERED": "1",
        }
        if self.device is not None:
            env["CNNLAB_WORKER_DEVICE"] = self.device
        log = folder / f"worker-{time.time_ns()}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(self.worker_command),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=Path(__file__).resolve().parents[1],
            )
        self._workers[proc.pid] = _Worker(proc, log)

    def _finish(self, run: Run, status: str, error: str) -> None:
        """End ``run`` as ``status`` unless it ended meanwhile (its worker got there first)."""
        try:
            current = self.store.load_run(run.run_id)
        except KeyError:
            return  # deleted meanwhile
        same_worker = (current.worker_host, current.worker_pid) == (run.worker_host, run.worker_pid)
        if current.status == "running" and same_worker:
            self.store.finish(run.run_id, status, final=current.final, error=error)

    def running_workers(self) -> list[int]:
        """Process ids of the workers this scheduler supervises."""
        with self._lock:
            return list(self._workers)


def _tail(log: Path, lines: int = 6) -> str:
    """The last lines a worker wrote about its current run: usually what killed it."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    # A worker trains many runs; it marks where each one begins (cnnlab.worker.RUN_MARK).
    text = text.rsplit(RUN_MARK, 1)[-1].split("\n", 1)[-1] if RUN_MARK in text else text
    return "\n".join(text.strip().splitlines()[-lines:])


_SCHEDULER: Scheduler | None = None
_SCHEDULER_LOCK = threading.Lock()
_AT_EXIT_REGISTERED = False


def get_scheduler() -> Scheduler:
    """The server-wide scheduler, created and started on first use (shared by all sessions)."""
    global _SCHEDULER, _AT_EXIT_REGISTERED
    with _SCHEDULER_LOCK:
        store = open_store()
        # A changed store (tests) gets a fresh scheduler rather than a stale one, and the old
        # one's workers go: they would keep serving a store nobody reads any more.
        if _SCHEDULER is not None and _SCHEDULER.store is not store:
            _SCHEDULER.shutdown()
            _SCHEDULER = None
        if _SCHEDULER is None:
            if not _AT_EXIT_REGISTERED:
                # A server that exits (Streamlit on SIGTERM) first lets its workers checkpoint.
                atexit.register(shutdown_scheduler)
                _AT_EXIT_REGISTERED = True
            _SCHEDULER = Scheduler(store).start()
        return _SCHEDULER


def shutdown_scheduler() -> None:
    """Stop the server-wide scheduler and its workers (their runs become "interrupted")."""
    global _SCHEDULER
    with _SCHEDULER_LOCK:
        if _SCHEDULER is not None:
            _SCHEDULER.shutdown()
            _SCHEDULER = None


def serve_pool(workers: int | None = None, device: str | None = None) -> int:
    """The worker service (``python -m cnnlab.worker --serve``): a pool of ``workers`` worker
    processes training runs from the shared store, with one kept warm, until SIGINT or SIGTERM
    (then its workers checkpoint and their runs become "interrupted", resumable).

    The pools together train at most ``$CNNLAB_MAX_CONCURRENT_RUNS`` runs at once when it is
    set; otherwise each pool's ``workers`` is its only limit.
    """
    limits = dataclasses.replace(Limits.from_env(), spawn_workers=True)
    slots = workers or limits.max_concurrent
    if not os.environ.get("CNNLAB_MAX_CONCURRENT_RUNS", "").strip():
        limits = dataclasses.replace(limits, max_concurrent=10**6)
    sched = Scheduler(open_store(), limits, slots=slots, device=device).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"cnnlab training workers: {plural(slots, 'slot')} for {device or 'any'} runs on "
          f"{host_id()}, data in {sched.store.data_dir}", flush=True)  # fmt: skip
    sched.keep_warm()
    while not stop.wait(5.0):
        sched.keep_warm()
    sched.shutdown()
    return 0


def main() -> int:
    """``python -m cnnlab.jobs``: the older name of ``python -m cnnlab.worker --serve``."""
    return serve_pool()


if __name__ == "__main__":
    sys.exit(main())

"""Train stored runs, on this machine or any other sharing the runs store.

- ``python -m cnnlab.worker --serve [--workers N] [--device cpu|cuda]`` is the worker service:
  a pool of N worker processes (:class:`cnnlab.jobs.Scheduler`) that claim queued runs from the
  store (``$CNNLAB_DATABASE_URL`` for a store shared between machines), heartbeat while they
  train, honour stop requests and budgets, and on SIGTERM or SIGINT checkpoint and mark their
  runs interrupted (resumable). A ``cuda`` pool trains only runs that can use a GPU, a ``cpu``
  pool only runs that can run on a CPU (:func:`cnnlab.runs.device_need`).
- ``python -m cnnlab.worker --slot`` is one worker process of such a pool (or of a web
  process's own pool): it claims and trains runs one after another, and leaves with its pool.
- ``python -m cnnlab.worker RUN_ID`` trains one given run.

:func:`execute` is also what the command line (:mod:`cnnlab.train`) calls in-process, so the
page, the queue and the command line train and record runs the same way.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab import experiments
from cnnlab.jobs import RUN_MARK
from cnnlab.runs import EpochRecord, Run, RunStore, StepPoint, host_id, open_store

READY_MARK = "== cnnlab worker ready"
MISCLASSIFIED_KEPT = 48  # enough for a gallery, small enough to store with the run
# Per epoch (epoch, loss, accuracy) measured on training images like the validation metrics; an
# array with the run rather than epochs-table columns, so every store keeps it unchanged.
TRAIN_EVAL_ARRAY = "train_eval"
# Set by SIGTERM: the server is stopping, so the current run checkpoints and ends "interrupted".
_TERMINATING = threading.Event()
# The server process that started this worker, named by its environment (CNNLAB_SERVER_PID), so
# a server that dies while the worker is still starting is noticed too; None: nobody to watch.
_SERVER_PID: int | None = None


def _server_gone() -> bool:
    """True once the server that started this worker has died (the worker was re-parented)."""
    return _SERVER_PID is not None and os.getppid() != _SERVER_PID


class Reporter:
    """Buffers step points and writes them to the store at most every ``interval_s``.

    Writing every step would cost a transaction per step; batching keeps the worker's overhead
    small while the page still sees several updates a second.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        interval_s: float = 0.1,
        echo: Callable[[Any], None] | None = None,
        lost: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.interval_s = interval_s
        self.echo = echo
        self.lost = lost
        self._pending: list[StepPoint] = []
        self._last_flush = 0.0
        self._last_progress: dict[str, Any] = {}

    def on_step(self, progress: Any) -> None:
        """Record one step (an engine ``Progress``); flush when the interval has passed."""
        self._pending.append(
            StepPoint(
                progress.step,
                progress.epoch,
                float(progress.loss),
                float(progress.accuracy),
                float(progress.images_per_second),
                float(progress.elapsed_seconds),
            )
        )
        self._last_progress = asdict(progress)
        if time.monotonic() - self._last_flush >= self.interval_s:
            self.flush()
            if self.echo is not None:
                self.echo(progress)

    def flush(self) -> None:
        """Write the buffered points and the latest progress snapshot (nothing once the run is
        lost to another worker)."""
        if self.lost is not None and self.lost.is_set():
            self._pending = []
            return
        self.store.append_steps(self.run_id, self._pending)
        self._pending = []
        if self._last_progress:
            self.store.update_progress(self.run_id, self._last_progress)
        self._last_flush = time.monotonic()


class Heartbeat:
    """Refreshes the run's heartbeat every ``interval_s`` from a thread while the run trains
    (data loading and evaluation included), so a scheduler on another machine can tell a
    working run from one whose machine was lost (:meth:`cnnlab.runs.SqlRunStore.mark_interrupted`).
    """

    def __init__(self, store: RunStore, run_id: str, interval_s: float | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.interval_s = interval_s or _env("CNNLAB_HEARTBEAT_S", 5.0)
        # Set once the run is no longer ours (marked interrupted or claimed elsewhere): from
        # then on nothing of this attempt may be written to it.
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="cnnlab-heartbeat", daemon=True)

    def start(self) -> None:
        """Start beating (the claim recorded the first beat)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; the run has ended (or its worker is leaving)."""
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if not self.store.heartbeat(self.run_id, host_id(), os.getpid()):
                    self.lost.set()
                    return
            except Exception as exc:  # a database hiccup: the next beat tries again
                print(f"cnnlab heartbeat: {exc!r}", file=sys.stderr, flush=True)


class StopSignal:
    """``should_stop`` for the trainer: a stop request, the time budget, or the server gone.

    The store is polled at most every ``poll_s`` so checking after every step stays cheap.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        deadline: float | None,
        watch_parent: bool,
        poll_s: float = 0.2,
        lost: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.lost = lost
        self.run_id = run_id
        self.deadline = deadline
        self.watch_parent = watch_parent
        self.poll_s = poll_s
        self.reason: str | None = None
        self._last_poll = 0.0

    def __call__(self) -> bool:
        if self.reason is not None:
            return True
        now = time.monotonic()
        if self.lost is not None and self.lost.is_set():
            self.reason = "lost"  # another process has the run now: end without a trace
        elif self.deadline is not None and now > self.deadline:
            self.reason = "timed_out"
        elif _TERMINATING.is_set() or (self.watch_parent and _server_gone()):
            # Told to stop, or re-parented (the server that launched us is gone): stop cleanly
            # so the run is marked interrupted with a checkpoint of where it got to.
            self.reason = "interrupted"
        elif now - self._last_poll >= self.poll_s:
            self._last_poll = now
            if self.store.stop_requested(self.run_id):
                self.reason = "stopped"
        return self.reason is not None


def execute(
    store: RunStore,
    run_id: str,
    *,
    threads: int | None = None,
    time_budget_s: float | None = None,
    compute_budget_s: float | None = None,
    watch_parent: bool = False,
    echo: Callable[[Any], None] | None = None,
    startup_s: float = 0.0,
    device: str | None = None,
) -> Run:
    """Train the stored run ``run_id`` to its end, recording everything in ``store``.

    The run stops cleanly, keeping a checkpoint of where it got to, after ``time_budget_s`` or
    when its total slot time over all attempts reaches ``compute_budget_s``. Where the time
    went (``startup_s`` of the worker process, data, model, training, evaluation, recording) is
    stored in ``final["phases"]``. ``device`` is the pool's (``cpu``/``cuda``): a run that did
    not name a device trains there. Returns the run as stored at the end. A training error is
    recorded as "failed" and re-raised, so a worker process exits non-zero.
    """
    from cnnlab.device import pick_device
    from cnnlab.models import ModelSpec, build_model
    from cnnlab.training import TrainConfig, evaluate, first_conv_weight, train

    if threads:
        torch.set_num_threads(threads)
    run = store.load_run(run_id)
    started = time.monotonic()
    if experiments.is_experiment(run.spec):  # a lab's experiment: several short arms in a row
        budget = _attempt_budget(time_budget_s, compute_budget_s, run.compute_seconds)
        deadline = started + budget if budget is not None else None
        stop = StopSignal(store, run_id, deadline, watch_parent)
        experiments.execute(store, run_id, time_budget_s=budget, should_stop=stop)
        return store.load_run(run_id)
    claimed_at = run.started_at or time.time()
    budget = _attempt_budget(time_budget_s, compute_budget_s, run.compute_seconds)
    phases = dict.fromkeys(("data", "model", "train", "evaluate", "record"), 0.0)
    phases["startup"] = startup_s
    heartbeat = Heartbeat(store, run_id)
    heartbeat.start()
    try:
        cfg = TrainConfig.from_dict(run.config)
        chosen = pick_device(getattr(cfg, "device", None) or device or None)
        store.update_status(
            run_id,
            "running",
            device=_device_label(str(chosen)),
            started_at=run.started_at or time.time(),
            heartbeat_at=time.time(),
            worker_pid=os.getpid(),
            worker_host=host_id(),
        )
        # Until the first step is reported, the page shows which phase the worker is in.
        store.update_progress(run_id, {"phase": "data"})
        t = time.perf_counter()
        data = _load_data(run, store.data_dir)
        phases["data"] = time.perf_counter() - t
        input_shape = tuple(int(n) for n in data.train_x.shape[1:])
        store.set_meta(
            run_id,
            {
                "classes": list(data.classes),
                "input_shape": list(input_shape),
                "num_classes": len(data.classes),
                "mean": np.asarray(data.mean).tolist(),
                "std": np.asarray(data.std).tolist(),
            },
        )
        store.update_progress(run_id, {"phase": "model"})
        t = time.perf_counter()
        torch.manual_seed(cfg.seed)  # the engine's recipe for reproducible initial weights
        model = build_model(ModelSpec.from_dict(run.spec), input_shape, len(data.classes))
        phases["model"] = time.perf_counter() - t

        start_epoch, resume_state = 0, None
        if run.resume:
            resume_state = store.load_checkpoint(run_id)
            if resume_state is None:
                raise ValueError("This run has no checkpoint to resume from.")
            start_epoch = int(resume_state["epoch"])  # epochs completed (1-based epochs)
            store.truncate_after(run_id, int(resume_state["epoch"]), int(resume_state["step"]))

        else:
            initial = first_conv_weight(model)
            if initial is not None:
                store.put_array(run_id, "kernels_at_start", initial)
        lost = heartbeat.lost
        reporter = Reporter(store, run_id, echo=echo, lost=lost)
        deadline = started + budget if budget is not None else None
        stop = StopSignal(store, run_id, deadline, watch_parent, lost=lost)

        def on_epoch(metrics: Any, state: dict[str, Any]) -> None:
            if lost.is_set():
                return
            t = time.perf_counter()
            reporter.flush()
            store.append_epoch(
                run_id,
                EpochRecord(
                    metrics.epoch,
                    metrics.train_loss,
                    metrics.train_accuracy,
                    metrics.val_loss,
                    metrics.val_accuracy,
                    metrics.seconds,
                    metrics.lr,
                    first_conv_weight(model),
                ),
            )
            store.save_checkpoint(run_id, metrics.epoch, state)
            probes = [
                (h["epoch"], h["train_eval_loss"], h["train_eval_accuracy"])
                for h in state["history"]
                if h.get("train_eval_loss") is not None
            ]
            if probes:
                store.put_array(run_id, TRAIN_EVAL_ARRAY, np.asarray(probes, dtype=np.float64))
            phases["record"] += time.perf_counter() - t

        def on_stop(state: dict[str, Any]) -> None:
            # Keep the partial epoch: a stopped or timed-out run resumes from the next batch.
            if lost.is_set():
                return
            t = time.perf_counter()
            store.save_checkpoint(run_id, int(state["epoch"]), state)
            phases["record"] += time.perf_counter() - t

        store.update_progress(run_id, {"phase": "train"})
        t = time.perf_counter()
        result = train(
            model,
            data,
            cfg,
            on_step=reporter.on_step,
            on_epoch=on_epoch,
            should_stop=stop,
            on_stop=on_stop,
            start_epoch=start_epoch,
            resume_state=resume_state,
        )
        wall = time.perf_counter() - t
        # train_seconds spans the steps and the epochs' recording; the rest is evaluation.
        phases["train"] = max(0.0, result.train_seconds - phases["record"])
        phases["evaluate"] = max(0.0, wall - result.train_seconds)
        if lost.is_set():  # the run is another worker's now (or ended): leave it as it is
            return store.load_run(run_id)
        t = time.perf_counter()
        reporter.flush()
        if stop.reason is None or store.load_run(run_id).checkpoint_epoch is not None:
            store.save_final_weights(run_id, model.state_dict())
        final = _final_metrics(store, run_id, model, data, result, evaluate)
        phases["record"] += time.perf_counter() - t
        used = run.compute_seconds + time.time() - claimed_at
        store.finish(
            run_id,
            stop.reason or "finished",
            final={**final, "phases": phases},
            error=_reason_text(stop, time_budget_s, compute_budget_s, used),
        )
    except BaseException as exc:
        if not heartbeat.lost.is_set():
            store.finish(run_id, "failed", error=_explain(exc))
        raise
    finally:
        heartbeat.stop()
    return store.load_run(run_id)


def _attempt_budget(
    time_budget_s: float | None, compute_budget_s: float | None, used_s: float
) -> float | None:
    """Seconds this attempt may train: the per-run budget, within what is left of the total."""
    left = compute_budget_s - used_s if compute_budget_s else None
    budgets = [b for b in (time_budget_s, left) if b is not None]
    return max(1.0, min(budgets)) if budgets else None


def _load_data(run: Run, data_dir: Path) -> Any:
    """The run's data set: a named one, or the learner's zip saved under ``data_dir``."""
    options = json.dumps(run.meta.get("data_options", {}), sort_keys=True)
    return _dataset(run.dataset, options, str(data_dir))


@functools.lru_cache(maxsize=2)
def _dataset(name: str, options_json: str, data_dir: str) -> Any:
    """Load a data set once per worker: a class trains the same one run after run.

    Safe to share between runs because training never writes into the bundle's tensors.
    """
    from cnnlab.data import load_dataset
    from cnnlab.uploads import UPLOAD, load_uploaded_zip

    options = json.loads(options_json)
    if name == UPLOAD:
        return load_uploaded_zip(data_dir=Path(data_dir), **options)
    return load_dataset(name, **options)


def _final_metrics(
    store: RunStore, run_id: str, model: nn.Module, data: Any, result: Any, evaluate: Any
) -> dict[str, Any]:
    """Test-set metrics and the most confidently wrong test images, stored with the run."""
    ev = result.test or evaluate(
        model, data.test_x, data.test_y, data.mean, data.std, len(data.classes)
    )
    predictions = np.asarray(ev.predictions)
    confidences = np.asarray(ev.confidences)
    truth = np.asarray(data.test_y)
    wrong = np.flatnonzero(predictions != truth)
    wrong = wrong[np.argsort(-confidences[wrong], kind="stable")][:MISCLASSIFIED_KEPT]
    store.put_array(run_id, "misclassified", np.asarray(data.test_x)[wrong])
    return {
        "test_accuracy": float(ev.accuracy),
        "per_class_accuracy": [float(a) for a in ev.per_class_accuracy],
        "confusion": np.asarray(ev.confusion).astype(int).tolist(),
        "misclassified": {
            "indices": wrong.tolist(),
            "labels": truth[wrong].astype(int).tolist(),
            "predictions": predictions[wrong].astype(int).tolist(),
            "confidences": confidences[wrong].astype(float).tolist(),
        },
        "train_seconds": float(result.train_seconds),
        "images_per_second": float(result.images_per_second),
        "steps": int(result.steps),
        "epochs_completed": int(result.epochs_completed),
        "early_stopped": bool(result.early_stopped),
        "best_epoch": result.best_epoch,
    }


def _device_label(device: str) -> str:
    """``cpu`` / ``cuda:0`` in words, e.g. ``CPU: AMD EPYC … (1 thread)``."""
    from cnnlab.device import describe_device

    return describe_device(torch.device(device)).label


def _reason_text(
    stop: StopSignal, time_budget_s: float | None, compute_budget_s: float | None, used_s: float
) -> str:
    """Why a run ended early, for the learner ("" when it finished or was stopped by them)."""
    if stop.reason == "timed_out":
        if compute_budget_s and used_s >= compute_budget_s - 1:
            return (
                f"The run used its whole compute budget of {compute_budget_s:.0f} s (over all "
                f"its attempts) and stopped cleanly. Its progress is kept, but it cannot be "
                f"resumed again: start a new run with fewer epochs or a smaller model."
            )
        left = (
            f" It has used {used_s:.0f} s of its {compute_budget_s:.0f} s in all."
            if compute_budget_s
            else ""
        )
        return (
            f"The run reached this server's time budget of {time_budget_s or used_s:.0f} s per "
            f"attempt and stopped cleanly, keeping everything it learned; resume it to "
            f"continue from where it stopped.{left}"
        )
    if stop.reason == "interrupted":
        return "The server stopped while this run was training; resume it to continue."
    return ""


def _explain(exc: BaseException) -> str:
    """The error text stored with a failed run: the learner's sentence, or the traceback tail."""
    if isinstance(exc, ValueError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "The training process was interrupted."
    lines = traceback.format_exception(exc)
    return "".join(lines[-3:]).strip()


def serve(
    store: RunStore,
    *,
    max_concurrent: int,
    threads: int,
    time_budget_s: float | None,
    compute_budget_s: float | None,
    idle_s: float,
    max_runs: int,
    startup_s: float = 0.0,
    poll_s: float = 0.2,
    device: str | None = None,
) -> int:
    """Claim and train queued runs one after another (only those a ``device`` pool may train);
    return the exit status.

    Leaves after ``idle_s`` without work, after ``max_runs`` runs (0: no limit), when the
    server that started it is gone, or after an unexpected error (a fresh process then takes
    over, so one broken run cannot poison the next).
    """
    torch.set_num_threads(threads)
    done = 0
    idle_since = time.monotonic()
    print(READY_MARK, flush=True)  # in its log: warmed up, taking runs from now on
    while not _server_gone() and not _TERMINATING.is_set():
        run = None
        if store.has_queued(device):  # a read first: claiming takes the write lock
            run = store.claim_next(
                max_concurrent, worker_host=host_id(), worker_pid=os.getpid(), device=device
            )
        if run is None:
            if time.monotonic() - idle_since > idle_s:
                return 0
            time.sleep(poll_s)
            continue
        print(f"{RUN_MARK}{run.run_id}", flush=True)
        try:
            execute(
                store,
                run.run_id,
                threads=threads,
                time_budget_s=time_budget_s,
                compute_budget_s=compute_budget_s,
                watch_parent=True,
                startup_s=startup_s,
                device=device,
            )
        except ValueError:
            traceback.print_exc()  # the learner's input: recorded with the run, nothing broken
        except Exception:
            traceback.print_exc()
            return 1
        startup_s = 0.0  # paid by this worker's first run only
        done += 1
        if max_runs and done >= max_runs:
            return 0
        idle_since = time.monotonic()
    return 0


def _warm_up(data_dir: Path) -> None:
    """Pay torch's one-time costs (meta-device shape inference, first kernels, the fused
    optimizer) once per worker, before it takes a run: ~3 s here for the first model built;
    and load the page's default data set (the built-in shapes), which most runs of a class use."""
    from cnnlab.data import DataBundle
    from cnnlab.models import PRESETS, build_model
    from cnnlab.training import TrainConfig, train

    images = torch.zeros(8, 1, 28, 28, dtype=torch.uint8)
    labels = torch.arange(8) % 2
    bundle = DataBundle("warm-up", ("a", "b"), images, labels, images, labels, (0.5,), (0.5,))
    cfg = TrainConfig(epochs=1, batch_size=4, max_steps=1, val_fraction=0.0, device="cpu")
    train(build_model(PRESETS["fast"], (1, 28, 28), 2), bundle, cfg)
    _dataset("shapes", "{}", str(data_dir))


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cnnlab.worker",
        description="Train queued runs from the runs store ($CNNLAB_DATABASE_URL, else SQLite "
        "in $CNNLAB_DATA_DIR), or one given run.",
    )
    role = parser.add_mutually_exclusive_group(required=True)
    role.add_argument("--serve", action="store_true", help="run a worker pool (the service)")
    role.add_argument("--slot", action="store_true", help="one worker process of a pool")
    role.add_argument("run_id", nargs="?", help="train this one run")
    parser.add_argument(
        "--workers",
        type=int,
        help="worker processes in the pool, i.e. runs it trains at once (default: "
        "$CNNLAB_MAX_CONCURRENT_RUNS, else the cores less one)",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default=os.environ.get("CNNLAB_WORKER_DEVICE") or None,
        help="train only runs that can run on a CPU (cpu) or use a GPU (cuda); default: any "
        "run, on the device it asks for",
    )
    args = parser.parse_args(argv)
    if args.workers is not None and (not args.serve or args.workers < 1):
        parser.error("--workers is a positive number, for --serve")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``--serve`` a worker pool, be one ``--slot`` of a pool, or train ``RUN_ID``."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch sees no CUDA GPU on this machine", file=sys.stderr)
        return 2
    if args.serve:
        from cnnlab.jobs import serve_pool

        return serve_pool(args.workers, args.device)
    budget = _env("CNNLAB_RUN_TIME_BUDGET_S", 0) or None
    compute = _env("CNNLAB_RUN_COMPUTE_BUDGET_S", 0) or None
    threads = int(_env("CNNLAB_WORKER_THREADS", 1))
    global _SERVER_PID
    _SERVER_PID = int(os.environ.get("CNNLAB_SERVER_PID") or os.getppid())
    # Below the process that started it (CNNLAB_WORKER_NICE levels; 0: the same): on a server that
    # also answers a class's clicks, a click's rerun takes a core from a training run at once
    # instead of sharing it, and the run goes on when the click is done.
    os.nice(max(0, int(_env("CNNLAB_WORKER_NICE", 10))))
    store = open_store()
    # Ctrl-C in a terminal reaches the whole pool: like SIGTERM, checkpoint and end interrupted.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: _TERMINATING.set())
    if args.slot:
        spawned = _env("CNNLAB_WORKER_SPAWNED_AT", 0)
        torch.set_num_threads(threads)
        # CNNLAB_WARM_WORKER=0: nothing is paid ahead of a run (a class's first runs then wait
        # ~2 s longer; the test suite's hundreds of tiny runs do not pay it at all).
        if _env("CNNLAB_WARM_WORKER", 1):
            try:
                _warm_up(store.data_dir)
            except Exception:  # only a head start: the runs themselves report any problem
                traceback.print_exc()
        return serve(
            store,
            max_concurrent=int(_env("CNNLAB_MAX_CONCURRENT_RUNS", 1)),
            threads=threads,
            time_budget_s=budget,
            compute_budget_s=compute,
            idle_s=_env("CNNLAB_WORKER_IDLE_S", 300),
            max_runs=int(_env("CNNLAB_WORKER_MAX_RUNS", 0)),
            startup_s=time.time() - spawned if spawned else 0.0,
            device=args.device,
        )
    try:
        execute(
            store,
            args.run_id,
            threads=threads,
            time_budget_s=budget,
            compute_budget_s=compute,
            watch_parent=True,
            device=args.device,
        )
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

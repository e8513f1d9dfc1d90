"""Experiments: several short training runs ("arms") compared on one chart, trained in the worker.

A lab's experiment (plain vs residual nets, five optimisers, three losses, a learning-rate ×
batch-size grid, regularisation overlays, a single-shot detector) is ONE run in the runs store,
queued like a Train-page run: the fair-use cap of one active run per browser holds, and the worker
trains the arms one after another with the ordinary training loop (:func:`cnnlab.training.train`),
each from the experiment's seed. Per-arm curves are stored as named arrays of the run
(``arm{i}.steps``, ``arm{i}.epochs``) while it trains, so the page overlays them live; the final
metrics go into the run's ``final``. Same seed, same curves: nothing here draws from an unseeded
generator.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from cnnlab.data import DataBundle, make_shapes
from cnnlab.gradient_flow import deep_spec
from cnnlab.models import PRESETS, LayerSpec, ModelSpec, build_model
from cnnlab.training import EpochMetrics, Progress, TrainConfig, train

EXPERIMENTS = ("residual", "optimizers", "losses", "lr_batch", "regularisation", "detector")
TITLES = {
    "residual": "Plain vs residual, with and without batch norm",
    "optimizers": "Five optimisers on the same network and seed",
    "losses": "Three losses on the same network and seed",
    "lr_batch": "Learning rate × batch size",
    "regularisation": "Overfitting a small training set, and five cures",
    "detector": "A tiny single-shot detector",
}
MAX_SEED = 9999
DATA_SEED = 0  # the images are the same for every seed: the seed moves weights and batches
STEP_FIELDS = ("step", "loss", "accuracy", "elapsed_seconds")
EPOCH_FIELDS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")
RESIDUAL_DEPTH = 20


@dataclass(frozen=True)
class Arm:
    """One training run of an experiment: a label, a network and its settings."""

    label: str
    spec: ModelSpec
    config: TrainConfig
    train_images: int  # the first this many images of the experiment's training set


@dataclass(frozen=True)
class Plan:
    """What an experiment trains: its arms over one data set, from one seed."""

    name: str
    seed: int
    quick: bool
    train_images: int
    test_images: int
    arms: tuple[Arm, ...]

    @property
    def title(self) -> str:
        """The experiment's name in words."""
        return TITLES[self.name]


def _config(seed: int, **kw: Any) -> TrainConfig:
    # Constant learning rate, no smoothing, no weight decay unless an arm asks: each arm differs
    # from the others only in what the experiment compares.
    base = {
        "epochs": 2,
        "batch_size": 32,
        "optimizer": "adam",
        "lr": 1e-3,
        "schedule": "constant",
        "weight_decay": 0.0,
        "label_smoothing": 0.0,
        "seed": seed,
        "val_fraction": 0.1,
    }
    return TrainConfig(**{**base, **kw})


def _with_dropout(spec: ModelSpec, p: float) -> ModelSpec:
    """``spec`` with dropout before its last layer (the classifier)."""
    layers = (*spec.layers[:-1], LayerSpec("dropout", {"p": p}), spec.layers[-1])
    return ModelSpec(layers, f"{spec.name}_dropout")


def plan(name: str, seed: int = 0, quick: bool = True) -> Plan:
    """The arms of experiment ``name``; ``quick`` trains on fewer images for fewer epochs."""
    if name not in EXPERIMENTS:
        raise ValueError(f"Unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"The seed must be a whole number from 0 to {MAX_SEED}.")
    fast = PRESETS["fast"]
    n = 1500 if quick else 6000
    epochs = 2 if quick else 4
    arms: list[Arm] = []
    if name == "residual":
        # Twenty convs per net cost most: fewer images, in smaller batches (more steps each).
        n = 800 if quick else 4000
        for residual in (False, True):
            for bn in (False, True):
                label = ("residual" if residual else "plain") + (" + BN" if bn else "")
                # SGD with momentum: it does not rescale the gradients the nets are compared by.
                # At 0.05 the residual net without batch norm never left chance; at 0.02 all but
                # the plain one learn something in two epochs (measured, seed 0).
                cfg = _config(
                    seed, epochs=epochs, optimizer="sgd", lr=0.02, momentum=0.9, batch_size=16
                )
                arms.append(Arm(label, deep_spec(RESIDUAL_DEPTH, 8, residual, bn), cfg, n))
    elif name == "optimizers":
        choices = (
            ("SGD", {"optimizer": "sgd", "lr": 0.05, "momentum": 0.0}),
            ("SGD + momentum 0.9", {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}),
            ("RMSprop", {"optimizer": "rmsprop", "lr": 1e-3}),
            ("Adam", {"optimizer": "adam", "lr": 1e-3}),
            ("AdamW (weight decay 0.05)", {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05}),
        )
        arms = [Arm(label, fast, _config(seed, epochs=epochs, **kw), n) for label, kw in choices]
    elif name == "losses":
        choices = (("cross-entropy", "ce"), ("binary cross-entropy", "bce"), ("MSE", "mse"))
        arms = [Arm(label, fast, _config(seed, epochs=epochs, loss=k), n) for label, k in choices]
    elif name == "lr_batch":
        for lr, word in ((1e-3, "too small"), (0.05, "good"), (2.0, "too large")):
            for batch in (16, 128):
                cfg = _config(seed, epochs=epochs, optimizer="sgd", lr=lr, batch_size=batch)
                arms.append(Arm(f"lr {lr:g} ({word}) · batch {batch}", fast, cfg, n))
    elif name == "regularisation":
        # A few hundred images and many epochs: enough for train and validation to part ways.
        n = 300 if quick else 600
        base = _config(seed, epochs=15 if quick else 25, lr=3e-3, val_fraction=0.3)
        cures = (
            ("augmentation (shifts, flips)", fast, {"augment": True, "augment_shift": 3}),
            ("dropout 0.5", _with_dropout(fast, 0.5), {}),
            ("weight decay 0.5 (AdamW)", fast, {"optimizer": "adamw", "weight_decay": 0.5}),
            ("L1 1e-4", fast, {"l1": 1e-4}),
            ("early stopping (patience 2)", fast, {"early_stopping_patience": 2}),
        )
        arms = [Arm("baseline", fast, base, n)]
        arms += [Arm(label, spec, replace(base, **kw), n) for label, spec, kw in cures]
    else:  # the detector trains its own loop (cnnlab.single_shot); its plan has no arms here
        n = 0
    tests = {"detector": 0, "residual": 500 if quick else 1000}.get(name, 1000)
    return Plan(name, seed, quick, n, tests, tuple(arms))


def plan_data(p: Plan) -> DataBundle:
    """The built-in shapes an experiment trains on (the same images for every seed)."""
    return make_shapes(p.train_images, p.test_images, seed=DATA_SEED)


def _subset(data: DataBundle, n: int) -> DataBundle:
    return replace(data, train_x=data.train_x[:n], train_y=data.train_y[:n])


@dataclass(frozen=True)
class ArmResult:
    """How one arm ended."""

    label: str
    steps: np.ndarray  # (S, len(STEP_FIELDS))
    epochs: np.ndarray  # (E, len(EPOCH_FIELDS)); NaN where there is no validation set
    test_accuracy: float | None
    train_seconds: float
    early_stopped: bool
    best_epoch: int | None
    stopped: bool  # a stop request (or the time budget) ended it early


def _epoch_row(m: EpochMetrics) -> list[float]:
    nan = float("nan")
    val_loss = nan if m.val_loss is None else m.val_loss
    val_acc = nan if m.val_accuracy is None else m.val_accuracy
    return [m.epoch, m.train_loss, m.train_accuracy, val_loss, val_acc]


def capped(p: Plan, max_steps: int | None) -> Plan:
    """``p`` with each arm trained at most ``max_steps`` steps (None: as planned)."""
    if max_steps is None:
        return p

    def cap(config: TrainConfig) -> TrainConfig:
        return replace(config, max_steps=min(max_steps, config.max_steps or max_steps))

    return replace(p, arms=tuple(replace(a, config=cap(a.config)) for a in p.arms))


def train_arms(
    p: Plan,
    data: DataBundle,
    *,
    device: str | None = None,
    on_update: Callable[[int, np.ndarray, np.ndarray, Progress | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[ArmResult]:
    """Train every arm of ``p`` in turn on ``data``; stops after the arm a stop request hits.

    ``on_update(arm, steps, epochs, progress)`` is called after every step and epoch with the
    arm's curves so far (arrays of STEP_FIELDS and EPOCH_FIELDS).
    """
    results: list[ArmResult] = []
    for index, arm in enumerate(p.arms):
        results.append(_train_arm(index, arm, data, device, on_update, should_stop))
        if results[-1].stopped:
            break
    return results


def _train_arm(
    index: int,
    arm: Arm,
    data: DataBundle,
    device: str | None,
    on_update: Callable[[int, np.ndarray, np.ndarray, Progress | None], None] | None,
    should_stop: Callable[[], bool] | None,
) -> ArmResult:
    """Train one arm from its seed, reporting its curves so far after every step and epoch."""
    steps: list[list[float]] = []
    epochs: list[list[float]] = []

    def report(progress: Progress | None) -> None:
        if on_update is not None:
            on_update(index, _table(steps, STEP_FIELDS), _table(epochs, EPOCH_FIELDS), progress)

    def step(progress: Progress) -> None:
        steps.append([progress.step, progress.loss, progress.accuracy, progress.elapsed_seconds])
        report(progress)

    def epoch(metrics: EpochMetrics, _state: Any) -> None:
        epochs.append(_epoch_row(metrics))
        report(None)

    cfg = replace(arm.config, device=device)
    subset = _subset(data, arm.train_images)
    torch.manual_seed(cfg.seed)  # the engine's recipe for reproducible initial weights
    model = build_model(arm.spec, subset.input_shape, subset.num_classes)
    result = train(model, subset, cfg, on_step=step, on_epoch=epoch, should_stop=should_stop)
    return ArmResult(
        arm.label,
        _table(steps, STEP_FIELDS),
        _table(epochs, EPOCH_FIELDS),
        None if result.test is None else float(result.test.accuracy),
        float(result.train_seconds),
        bool(result.early_stopped),
        result.best_epoch,
        bool(result.stopped),
    )


def _table(rows: list[list[float]], fields: tuple[str, ...]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(fields))


# -- the runs store and the worker ---------------------------------------------------------------
def spec_of(p: Plan) -> dict[str, Any]:
    """What the runs store keeps as the run's spec: enough to rebuild the plan."""
    return {"experiment": p.name, "seed": p.seed, "quick": p.quick}


def plan_of(spec: dict[str, Any]) -> Plan:
    """Inverse of :func:`spec_of`."""
    return plan(str(spec["experiment"]), int(spec["seed"]), bool(spec["quick"]))


def is_experiment(spec: dict[str, Any]) -> bool:
    """True for a stored run that is an experiment rather than a Train-page run."""
    return "experiment" in spec


def submit(
    sched: Any,
    owner: str,
    name: str,
    seed: int,
    quick: bool,
    client: str | None = None,
    max_steps: int | None = None,
) -> str:
    """Queue experiment ``name`` for ``owner`` through the scheduler's store and fair-use caps,
    each of its networks trained at most ``max_steps`` steps (a server's cap); returns the run id
    (ValueError with a sentence when refused)."""
    p = plan(name, seed, quick)
    run_id = sched.store.create_run(
        owner,
        dataset="shapes",
        config=TrainConfig(seed=seed, max_steps=max_steps).to_dict(),
        spec=spec_of(p),
        name=f"{p.title} (seed {seed}{', quick' if quick else ''})",
        meta={"arms": [a.label for a in p.arms] or [p.title]},
        client=client,
        caps=sched.limits.caps,
    )
    sched.wake()
    return run_id


class _Recorder:
    """Writes an arm's curves and the progress to the store at most every ``interval_s``."""

    def __init__(self, store: Any, run_id: str, p: Plan, interval_s: float = 0.25) -> None:
        self.store, self.run_id, self.plan, self.interval_s = store, run_id, p, interval_s
        self._last = 0.0

    def __call__(
        self, arm: int, steps: np.ndarray, epochs: np.ndarray, progress: Progress | None
    ) -> None:
        soon = time.monotonic() - self._last < self.interval_s
        if progress is not None and soon and progress.step < progress.total_steps:
            return
        self.store.put_array(self.run_id, f"arm{arm}.steps", steps)
        self.store.put_array(self.run_id, f"arm{arm}.epochs", epochs)
        if progress is not None:
            arms = max(1, len(self.plan.arms))
            done = (arm + progress.step / max(1, progress.total_steps)) / arms
            self.store.update_progress(
                self.run_id,
                {
                    "arm": arm,
                    "arms": arms,
                    "label": self.plan.arms[arm].label if self.plan.arms else "",
                    "step": progress.step,
                    "total_steps": progress.total_steps,
                    "epoch": progress.epoch,
                    "epochs": progress.epochs,
                    "loss": progress.loss,
                    "fraction": done,
                },
            )
        self._last = time.monotonic()


def execute(
    store: Any,
    run_id: str,
    *,
    time_budget_s: float | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Train the stored experiment ``run_id`` (the worker's side); records curves and results.

    A training error is recorded as "failed" and re-raised, as for any run.
    """
    from cnnlab.device import pick_device

    run = store.load_run(run_id)
    started = time.monotonic()
    try:
        p = plan_of(run.spec)
        cap = run.config.get("max_steps")
        device = pick_device(run.config.get("device"))
        store.update_status(
            run_id,
            "running",
            device=str(device),
            started_at=run.started_at or time.time(),
            heartbeat_at=time.time(),
            worker_pid=os.getpid(),
            worker_host=socket.gethostname(),
        )
        recorder = _Recorder(store, run_id, p)
        if p.name == "detector":
            from cnnlab.single_shot import run_detector_experiment

            final = run_detector_experiment(
                store, run_id, p, recorder, should_stop, str(device), max_steps=cap
            )
            stopped = final.pop("stopped")
        else:
            results = train_arms(
                capped(p, cap),
                plan_data(p),
                device=str(device),
                on_update=recorder,
                should_stop=should_stop,
            )
            stopped = any(r.stopped for r in results)
            final = {
                "arms": [
                    {
                        "label": r.label,
                        "test_accuracy": r.test_accuracy,
                        "final_val_accuracy": _last(r.epochs[:, 4]),
                        "final_train_accuracy": _last(r.epochs[:, 2]),
                        "train_seconds": r.train_seconds,
                        "steps": len(r.steps),
                        "early_stopped": r.early_stopped,
                        "best_epoch": r.best_epoch,
                    }
                    for r in results
                ]
            }
        final.update(seed=p.seed, quick=p.quick, seconds=time.monotonic() - started)
        reason = getattr(should_stop, "reason", None) if stopped else None
        status = reason or ("stopped" if stopped else "finished")
        error = ""
        if status == "timed_out":
            error = f"The experiment reached this server's time budget of {time_budget_s:.0f} s."
        store.finish(run_id, status, final=final, error=error)
    except BaseException as exc:
        from cnnlab.worker import _explain

        store.finish(run_id, "failed", error=_explain(exc))
        raise


def _last(column: np.ndarray) -> float | None:
    finite = column[np.isfinite(column)]
    return float(finite[-1]) if len(finite) else None


def array(store: Any, run: Any, owner: str | None, name: str) -> np.ndarray | None:
    """A named array of the owner's run, or of a shared run (``owner`` None)."""
    if owner is None:
        return store.get_shared_array(run.run_id, name)
    return store.get_array(owner, run.run_id, name)


def curves(store: Any, run: Any, owner: str | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each arm's (steps, epochs) tables so far: the owner's run, or a shared one (owner None)."""
    out = []
    for i in range(len(run.meta.get("arms", [])) or 1):
        steps = array(store, run, owner, f"arm{i}.steps")
        if steps is None:
            break
        epochs = array(store, run, owner, f"arm{i}.epochs")
        out.append((steps, epochs if epochs is not None else _table([], EPOCH_FIELDS)))
    return out

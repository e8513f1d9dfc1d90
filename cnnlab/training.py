"""Train and evaluate a classifier on a :class:`~cnnlab.data.DataBundle`, fast and resumably.

The whole data set lives on the training device as one uint8 tensor; each step indexes a batch
with a seeded permutation, normalises (and optionally augments) it there, and runs in
``channels_last`` layout (1.3–2× faster convolutions and pooling on this CPU, see
PERF-NOTES.md). The loop knows nothing of the UI: it reports through callbacks, checks a stop
request after every step, and hands out a checkpoint state after every epoch from which
:func:`train` can resume exactly where it left off.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.data import DataBundle, augment, normalize
from cnnlab.device import pick_device

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "cosine", "onecycle")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters and run settings.

    The defaults teach: nothing regularises the loss unseen (no label smoothing), so the training
    and validation losses measure the same thing. Settings tuned for a preset's benchmark are in
    :data:`TUNED_SETTINGS`.
    """

    epochs: int = 2
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 1.5e-2  # the peak learning rate for "onecycle"
    schedule: str = "onecycle"
    weight_decay: float = 5e-2
    momentum: float = 0.9  # SGD only
    label_smoothing: float = 0.0
    seed: int = 0
    early_stopping_patience: int | None = None  # epochs without a better validation loss
    augment: bool = False
    augment_shift: int = 2  # pixels, when augmenting
    val_fraction: float = 0.1  # of the training set, held out to validate after each epoch
    max_steps: int | None = None  # stop after this many steps in all (tests, quick looks)
    device: str | None = None  # None: CUDA when available, else CPU
    threads: int | None = None  # torch CPU threads; None leaves torch's setting alone
    channels_last: bool = True
    amp: bool = True  # bf16 autocast, used on CUDA only (it did not help on this CPU)
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        problems = _type_problems(self)
        if problems:  # ranges below compare numbers: only check them once the types are right
            raise ValueError("Training settings: " + "; ".join(problems) + ".")
        if not 1 <= self.epochs <= MAX_EPOCHS:
            problems.append(f"epochs must be from 1 to {MAX_EPOCHS} (got {self.epochs})")
        if not 1 <= self.batch_size <= MAX_BATCH:
            problems.append(f"the batch size must be from 1 to {MAX_BATCH} (got {self.batch_size})")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(SCHEDULES)}")
        if not 0 < self.lr <= 10:
            problems.append(f"the learning rate must be above 0 and at most 10 (got {self.lr})")
        if not 0 <= self.weight_decay <= 10:
            problems.append("weight decay must be between 0 and 10")
        if not 0 <= self.momentum < 1:
            problems.append("momentum must be at least 0 and below 1")
        if not 0 <= self.label_smoothing < 1:
            problems.append("label smoothing must be between 0 and 1")
        if not 0 <= self.seed < 2**63:
            problems.append("the seed must be a whole number from 0 to 2⁶³ − 1")
        if not 0 <= self.val_fraction < 1:
            problems.append("the validation fraction must be between 0 and 1")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            problems.append("early-stopping patience must be at least 1 epoch")
        if self.early_stopping_patience is not None and self.val_fraction == 0:
            problems.append("early stopping needs a validation set (val_fraction > 0)")
        if not 0 <= self.augment_shift <= 16:
            problems.append("the augmentation shift must be from 0 to 16 pixels")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append("max_steps must be at least 1")
        if self.threads is not None and not 1 <= self.threads <= 256:
            problems.append("threads must be from 1 to 256")
        if self.device is not None and not re.fullmatch(r"cpu|cuda(:\d{1,2})?|mps", self.device):
            problems.append("device must be cpu, cuda, cuda:N or mps")
        if not 1 <= self.eval_batch_size <= MAX_BATCH:
            problems.append(f"the evaluation batch size must be from 1 to {MAX_BATCH}")
        if problems:
            raise ValueError("Training settings: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused by name."""
        if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
            raise ValueError("Training settings must map setting names to values.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown training setting {unknown[0][:40]!r}.")
        return cls(**data)


MAX_EPOCHS = 1000
MAX_BATCH = 65536

# Settings tuned with benchmarks/train_speed.py for a preset's benchmark (most MNIST accuracy per
# second); the page and the command line start from the teaching defaults and offer these by
# name, labelled as tuned.
TUNED_SETTINGS: dict[str, dict[str, Any]] = {
    # Smoothing matters in a 2-epoch run: 0 cost ~0.5 % on MNIST; 0.2–0.3 beat 0.1 by ~0.1 %.
    "fast": {"label_smoothing": 0.3},
}


def tuned_config(preset: str, **overrides: Any) -> TrainConfig:
    """The settings tuned for ``preset``'s benchmark (the defaults where it has none)."""
    return TrainConfig(**{**TUNED_SETTINGS.get(preset, {}), **overrides})


def smoothing_floor(label_smoothing: float, num_classes: int) -> float:
    """The lowest training loss label smoothing allows: the entropy of the smoothed target.

    With smoothing ε over K classes the target puts 1 − ε + ε/K on the true class and ε/K on
    each other one; cross-entropy can only reach that distribution's entropy (0 without
    smoothing), which is why a smoothed training loss levels off above the validation loss.
    """
    if num_classes < 2 or not 0 <= label_smoothing < 1:
        raise ValueError("Need at least 2 classes and label smoothing in [0, 1).")
    if label_smoothing == 0:
        return 0.0
    other = label_smoothing / num_classes
    true = 1 - label_smoothing + other
    return float(-(true * math.log(true) + (num_classes - 1) * other * math.log(other)))


@dataclass(frozen=True)
class StepPlan:
    """How a run splits its images and how many optimisation steps it takes."""

    n_images: int  # training images given (before the validation split)
    n_train: int  # left to train on
    n_val: int  # held out to validate
    batch_size: int  # effective: never more than n_train
    steps_per_epoch: int  # the ragged tail of each epoch is dropped
    total_steps: int


def step_plan(n_images: int, cfg: TrainConfig) -> StepPlan:
    """The split and step counts :func:`train` will use for ``n_images`` training images."""
    n_val = _n_val(n_images, cfg.val_fraction)
    n_train = n_images - n_val
    batch_size = max(1, min(cfg.batch_size, n_train))
    steps_per_epoch = n_train // batch_size
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    return StepPlan(n_images, n_train, n_val, batch_size, steps_per_epoch, total_steps)


# Below FEW_STEPS a small network rarely gets past chance: each step updates the weights once,
# and the default schedule spends its first steps warming up (the fast preset on 900 shapes
# reached ~75 % after 42 steps; a 60-image upload stayed at chance after 10). Advice aims higher,
# at MIN_STEPS_PER_EPOCH and MIN_TOTAL_STEPS, so that the run has room to learn without a huge
# number of epochs.
FEW_STEPS = 25
MIN_STEPS_PER_EPOCH = 10
MIN_TOTAL_STEPS = 100


@dataclass(frozen=True)
class SmallDataAdvice:
    """A warning for a run with too few steps, and settings that give it enough."""

    message: str
    batch_size: int
    epochs: int


def small_data_advice(
    plan: StepPlan,
    cfg: TrainConfig,
    num_classes: int,
    batch_sizes: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256, 512),
    max_epochs: int = 50,
) -> SmallDataAdvice | None:
    """None when ``plan`` (of ``cfg``) takes at least ``FEW_STEPS`` steps, else the numbers in
    a sentence, and a batch size (from ``batch_sizes``) and epoch count that give at least
    ``MIN_STEPS_PER_EPOCH`` steps per epoch and ``MIN_TOTAL_STEPS`` in all (as far as the data
    and ``max_epochs`` allow). A ``max_steps`` cap is a deliberate quick look: not counted."""
    total = plan.steps_per_epoch * cfg.epochs
    if total >= FEW_STEPS:
        return None
    fitting = [b for b in batch_sizes if plan.n_train // b >= MIN_STEPS_PER_EPOCH]
    batch = max(fitting) if fitting else min(batch_sizes)
    per_epoch = max(1, plan.n_train // min(batch, max(1, plan.n_train)))
    new_epochs = min(max_epochs, max(cfg.epochs, math.ceil(MIN_TOTAL_STEPS / per_epoch)))
    steps = "step" if plan.steps_per_epoch == 1 else "steps"
    totals = "step" if total == 1 else "steps"
    message = (
        f"{plan.n_train:,} training images, batch {cfg.batch_size}: "
        f"{plan.steps_per_epoch} {steps} per epoch, {total} {totals} in total — "
        f"too few: expect the network to stay near chance ({1 / num_classes:.0%}). Each step "
        f"updates the weights once, and so few updates are rarely enough to learn."
    )
    return SmallDataAdvice(message, batch, new_epochs)


# The type each setting must have: JSON, a widget or a script can send anything, and a string
# epoch count or a NaN weight decay must be refused in words, not fail later in the loop.
_WHOLE = ("epochs", "batch_size", "seed", "augment_shift", "eval_batch_size")
_OPTIONAL_WHOLE = ("early_stopping_patience", "max_steps", "threads")
_REAL = ("lr", "weight_decay", "momentum", "label_smoothing", "val_fraction")
_FLAGS = ("augment", "channels_last", "amp")
_TEXT = ("optimizer", "schedule")


_LABELS = {
    "batch_size": "the batch size",
    "lr": "the learning rate",
    "weight_decay": "weight decay",
    "label_smoothing": "label smoothing",
    "val_fraction": "the validation fraction",
    "augment_shift": "the augmentation shift",
    "eval_batch_size": "the evaluation batch size",
    "early_stopping_patience": "early-stopping patience",
    "channels_last": "channels_last",
}


def _label(name: str) -> str:
    return _LABELS.get(name, name.replace("_", " "))


def _is_whole(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _type_problems(config: TrainConfig) -> list[str]:
    """Settings of the wrong type (or not finite), each as a phrase."""
    problems = []
    for name in _WHOLE:
        if not _is_whole(getattr(config, name)):
            problems.append(f"{_label(name)} must be a whole number")
    for name in _OPTIONAL_WHOLE:
        value = getattr(config, name)
        if value is not None and not _is_whole(value):
            problems.append(f"{_label(name)} must be a whole number or empty")
    for name in _REAL:
        value = getattr(config, name)
        if not (_is_whole(value) or isinstance(value, float | np.floating)) or not math.isfinite(
            value
        ):
            problems.append(f"{_label(name)} must be a finite number")
    for name in _FLAGS:
        if not isinstance(getattr(config, name), bool | np.bool_):
            problems.append(f"{_label(name)} must be true or false")
    for name in _TEXT:
        if not isinstance(getattr(config, name), str):
            problems.append(f"{_label(name)} must be text")
    if config.device is not None and not isinstance(config.device, str):
        problems.append("device must be text or empty")
    return problems


@dataclass(frozen=True)
class Progress:
    """One training step, as reported to ``on_step``."""

    step: int  # 1-based, counted over the whole run (resumed runs included)
    total_steps: int
    epoch: int  # 1-based
    epochs: int
    loss: float  # of this batch
    accuracy: float  # of this batch
    epoch_loss: float  # running mean over the epoch so far
    epoch_accuracy: float
    lr: float  # used by this step
    images_per_second: float
    eta_seconds: float
    elapsed_seconds: float


@dataclass(frozen=True)
class EpochMetrics:
    """Metrics at the end of one epoch (validation ones are None without a validation set)."""

    epoch: int  # 1-based
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float  # wall time of this epoch, validation included
    lr: float  # used by the epoch's last step
    images_per_second: float
    # Measured like the validation metrics (evaluation mode, plain cross-entropy) on as many
    # training images as the validation set holds, so the two compare directly; None without
    # a validation set.
    train_eval_loss: float | None = None
    train_eval_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpochMetrics:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass(frozen=True)
class Evaluation:
    """How a model does on a labelled set."""

    accuracy: float
    loss: float  # mean cross-entropy, without label smoothing
    per_class_accuracy: tuple[float, ...]  # NaN for a class with no examples
    confusion: torch.Tensor  # (K, K) int64; rows: true class, columns: predicted class
    predictions: torch.Tensor  # (N,) int64
    confidences: torch.Tensor  # (N,) float: softmax probability of the predicted class


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did."""

    history: tuple[EpochMetrics, ...]
    steps: int
    epochs_completed: int
    stopped: bool  # a stop request ended the run early
    early_stopped: bool  # validation stopped improving
    best_epoch: int | None  # with early stopping: the epoch whose weights the model now has
    train_seconds: float  # wall time of the optimisation steps (evaluation excluded)
    images_per_second: float
    device: str
    test: Evaluation | None
    kernel_history: tuple[np.ndarray, ...]  # first conv layer's weights: at start, each epoch


def first_conv_weight(model: nn.Module) -> np.ndarray | None:
    """A copy of the first convolution's weights (out, in, kh, kw), or None without one."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.weight.detach().float().cpu().numpy().copy()
    return None


def _cpu_state(state: Mapping[str, Any]) -> Any:
    """Deep copy of a (nested) state dict with tensors on the CPU in standard layout."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True).contiguous()
    if isinstance(state, Mapping):
        return {k: _cpu_state(v) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(_cpu_state(v) for v in state)
    return state


def _batches(
    mean: tuple[float, ...], std: tuple[float, ...], channels_last: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function turning a uint8 batch into the normalised float input the model expects."""

    def prepare(xb: torch.Tensor) -> torch.Tensor:
        out = normalize(xb, mean, std)  # (B, C, H, W) float32
        return out.contiguous(memory_format=torch.channels_last) if channels_last else out

    return prepare


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    num_classes: int,
    *,
    batch_size: int = 1000,
    channels_last: bool = True,
    amp: bool = True,
) -> Evaluation:
    """Accuracy, loss, per-class accuracy, confusion matrix and predictions of ``model``.

    ``x`` holds uint8 images (N, C, H, W); they are moved in batches to the model's device.
    """
    if len(x) == 0 or len(x) != len(y):
        raise ValueError("Evaluation needs at least one image and exactly one label per image.")
    device = next(model.parameters()).device
    prepare = _batches(mean, std, channels_last)
    use_amp = amp and device.type == "cuda"
    was_training = model.training
    model.eval()
    preds, confs, losses = [], [], []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            xb = prepare(x[start : start + batch_size].to(device, non_blocking=True))
            yb = y[start : start + batch_size].to(device, non_blocking=True)
            with torch.autocast(device.type, torch.bfloat16, enabled=use_amp):
                logits = model(xb)
            logits = logits.float()
            losses.append(F.cross_entropy(logits, yb, reduction="sum"))
            prob, pred = logits.softmax(dim=1).max(dim=1)
            preds.append(pred)
            confs.append(prob)
    model.train(was_training)
    predictions = torch.cat(preds).cpu()
    labels = y.cpu()
    confusion = torch.bincount(
        labels * num_classes + predictions, minlength=num_classes * num_classes
    ).view(num_classes, num_classes)
    totals = confusion.sum(dim=1)
    per_class = tuple(
        float(confusion[k, k] / totals[k]) if totals[k] else math.nan for k in range(num_classes)
    )
    return Evaluation(
        accuracy=float((predictions == labels).float().mean()),
        loss=float(torch.stack(losses).sum().cpu()) / len(x),
        per_class_accuracy=per_class,
        confusion=confusion,
        predictions=predictions,
        confidences=torch.cat(confs).float().cpu(),
    )


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
        )
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    # The fused kernel updates all parameters in one pass: ~3× faster steps for small CNNs here.
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    return kind(params, cfg.lr, weight_decay=cfg.weight_decay, fused=fused)


def _match_param_layout(opt: torch.optim.Optimizer) -> None:
    """Give every per-parameter state tensor (Adam's moments) its parameter's memory layout.

    Checkpoints store tensors in the standard layout, while a channels_last model's conv weights
    are not; with the fused Adam kernel such a mismatch made a resumed run drift away from the
    uninterrupted one (tests/test_training.py checks that they stay identical).
    """
    for param, state in opt.state.items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.shape == param.shape:
                state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _scheduler(
    opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step schedule over the whole run."""
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=max(2, total_steps))
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps))
    return torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)


def _n_val(n: int, fraction: float) -> int:
    """How many of ``n`` training examples the validation split holds out."""
    n_val = round(n * fraction)
    return min(max(1, n_val), n - 1) if fraction > 0 else n_val


def _split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded train/validation index split of ``n`` training examples."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = _n_val(n, fraction)
    return order[n_val:].sort().values, order[:n_val].sort().values


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # One generator per epoch, derived from the seed: a resumed run draws the same batches.
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def _checkpoint_state(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    device: torch.device,
    cfg: TrainConfig,
    *,
    epoch: int,
    step: int,
    history: list[EpochMetrics],
    kernels: list[np.ndarray],
    best: Mapping[str, Any],
    partial: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything :func:`train` needs to go on from here: ``epoch`` full epochs are done, and
    ``partial`` (when set) says how far the next one got (its batches, generator and sums)."""
    return {
        "epoch": epoch,
        "step": step,
        "model": _cpu_state(model.state_dict()),
        "optimizer": _cpu_state(opt.state_dict()),
        "scheduler": sched.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "history": [h.to_dict() for h in history],
        "kernel_history": [torch.from_numpy(k) for k in kernels],
        "early_stopping": dict(best),
        "config": cfg.to_dict(),
        "partial": None if partial is None else dict(partial),
    }


def train(
    model: nn.Module,
    data: DataBundle,
    cfg: TrainConfig,
    *,
    on_step: Callable[[Progress], None] | None = None,
    on_epoch: Callable[[EpochMetrics, dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_stop: Callable[[dict[str, Any]], None] | None = None,
    start_epoch: int = 0,
    resume_state: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``data`` with ``cfg``; evaluate it on the test set at the end.

    For reproducible runs build the model right after ``torch.manual_seed(cfg.seed)``.
    ``on_step(Progress)`` is called after every step (one step late, so reading the loss never
    stalls a GPU); ``on_epoch(metrics, checkpoint_state)`` after every epoch, where the state
    holds everything needed to resume: pass it back as ``resume_state`` with
    ``start_epoch=state["epoch"]`` to a freshly built model. ``should_stop()`` is checked after
    every step; when it returns True the run ends cleanly with ``stopped=True``, and
    ``on_stop(checkpoint_state)`` receives a mid-epoch checkpoint: resumed from it, the run goes
    on from the very next batch, so a stop or a time budget never throws away a partial epoch.
    """
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    use_amp = cfg.amp and device.type == "cuda"
    n_classes = data.num_classes

    train_idx, val_idx = _split(len(data.train_y), cfg.val_fraction, cfg.seed)
    # The whole (uint8) data set on the device: batches are gathered there, never in Python.
    x_all = data.train_x.to(device)
    y_all = data.train_y.to(device)
    x_train, y_train = x_all[train_idx.to(device)], y_all[train_idx.to(device)]
    x_val, y_val = x_all[val_idx.to(device)], y_all[val_idx.to(device)]
    del x_all, y_all
    n_train = len(y_train)
    if n_train == 0:
        raise ValueError("There are no training images left after the validation split.")
    plan = step_plan(len(data.train_y), cfg)  # the ragged tail is dropped; it changes every epoch
    batch_size, steps_per_epoch = plan.batch_size, plan.steps_per_epoch
    total_steps = plan.total_steps
    if not 0 <= start_epoch <= cfg.epochs:
        raise ValueError(f"start_epoch must be between 0 and {cfg.epochs}, got {start_epoch}.")

    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    prepare = _batches(data.mean, data.std, cfg.channels_last)
    opt = _optimizer(model, cfg)
    sched = _scheduler(opt, cfg, total_steps)

    history: list[EpochMetrics] = []
    kernels: list[np.ndarray] = []
    best = {"loss": math.inf, "epoch": None, "bad": 0, "state": None}
    step = start_epoch * steps_per_epoch
    partial = None
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
        opt.load_state_dict(resume_state["optimizer"])
        _match_param_layout(opt)
        sched.load_state_dict(resume_state["scheduler"])
        torch.set_rng_state(resume_state["rng_cpu"])
        if device.type == "cuda" and resume_state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(resume_state["rng_cuda"], device)
        history = [EpochMetrics.from_dict(h) for h in resume_state["history"]]
        kernels = [np.asarray(k) for k in resume_state.get("kernel_history", [])]
        best = dict(resume_state["early_stopping"])
        step = int(resume_state["step"])
        partial = resume_state.get("partial")
    else:
        torch.manual_seed(cfg.seed)  # dropout and any other global randomness
    if not kernels:
        w = first_conv_weight(model)
        if w is not None:
            kernels.append(w)

    def materialise(pending: tuple, t_now: float) -> None:
        """Turn the device tensors of an earlier step into a Progress for ``on_step``."""
        p_step, p_epoch, loss_t, correct_t, n, sums, p_lr = pending
        loss_sum, correct_sum, seen = float(sums[0]), float(sums[1]), sums[2]
        elapsed = t_now - t_start
        done = p_step - first_step
        rate = done * batch_size / max(elapsed, 1e-9)
        on_step(  # type: ignore[misc]
            Progress(
                step=p_step,
                total_steps=total_steps,
                epoch=p_epoch,
                epochs=cfg.epochs,
                loss=float(loss_t),
                accuracy=float(correct_t) / n,
                epoch_loss=loss_sum / seen,
                epoch_accuracy=correct_sum / seen,
                lr=p_lr,
                images_per_second=rate,
                eta_seconds=(total_steps - p_step) * elapsed / max(done, 1),
                elapsed_seconds=elapsed,
            )
        )

    def measure(x: torch.Tensor, y: torch.Tensor) -> Evaluation:
        """Loss and accuracy in evaluation mode, on original images, without smoothing."""
        return evaluate(
            model,
            x,
            y,
            data.mean,
            data.std,
            n_classes,
            batch_size=cfg.eval_batch_size,
            channels_last=cfg.channels_last,
            amp=cfg.amp,
        )

    stopped = early_stopped = False
    eval_seconds = 0.0
    images_seen = 0
    first_step = step
    t_start = time.perf_counter()
    epoch = start_epoch
    while epoch < cfg.epochs and step < total_steps and not (stopped or early_stopped):
        epoch += 1
        model.train()
        t_epoch = time.perf_counter()
        gen = _epoch_generator(cfg.seed, epoch)
        order = torch.randperm(n_train, generator=gen).to(device)
        loss_sum = torch.zeros((), device=device)
        correct_sum = torch.zeros((), device=device, dtype=torch.long)
        seen = first_batch = 0
        if partial is not None and int(partial["epoch"]) == epoch:
            # Go on inside the epoch the run stopped in: same batches, same augmentation draws.
            gen.set_state(partial["generator"])
            first_batch, seen = int(partial["batch"]), int(partial["seen"])
            loss_sum += float(partial["loss_sum"])
            correct_sum += int(partial["correct_sum"])
            t_epoch -= float(partial["seconds"])
            lr = float(partial["lr"])
        partial = None
        pending = None
        for i in range(first_batch, steps_per_epoch):
            if step >= total_steps:
                break
            idx = order[i * batch_size : (i + 1) * batch_size]
            xb, yb = x_train[idx], y_train[idx]  # (B, C, H, W) uint8, (B,)
            if cfg.augment:
                xb = augment(xb, gen, cfg.augment_shift, data.flip_ok)
            xb = prepare(xb)
            with torch.autocast(device.type, torch.bfloat16, enabled=use_amp):
                logits = model(xb)
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            lr = opt.param_groups[0]["lr"]  # the rate this step used, before the schedule moves
            sched.step()
            step += 1
            with torch.no_grad():
                loss_d = loss.detach()
                correct = (logits.argmax(dim=1) == yb).sum()
                loss_sum += loss_d * len(yb)
                correct_sum += correct
            seen += len(yb)
            images_seen += len(yb)
            if on_step is not None:
                # Report the previous step now that this one is queued: no pipeline stall.
                if pending is not None:
                    materialise(pending, time.perf_counter())
                sums = (loss_sum.clone(), correct_sum.clone(), seen)
                pending = (step, epoch, loss_d, correct, len(yb), sums, lr)
            if should_stop is not None and should_stop():
                stopped = True
                break
        if on_step is not None and pending is not None:
            materialise(pending, time.perf_counter())
        if seen == 0:
            break
        if stopped:
            if on_stop is not None:
                on_stop(
                    _checkpoint_state(
                        model, opt, sched, device, cfg, epoch=epoch - 1, step=step,
                        history=history, kernels=kernels, best=best,
                        partial={
                            "epoch": epoch,
                            "batch": i + 1,
                            "generator": gen.get_state(),
                            "loss_sum": float(loss_sum),
                            "correct_sum": int(correct_sum),
                            "seen": seen,
                            "seconds": time.perf_counter() - t_epoch,
                            "lr": lr,
                        },
                    )
                )  # fmt: skip
            break  # the partial epoch is in the checkpoint, not in the history

        val = probe = None
        t_eval = time.perf_counter()
        if len(y_val):
            val = measure(x_val, y_val)
            # The same measurement on training images: the fair comparison with validation.
            probe = measure(x_train[: len(y_val)], y_train[: len(y_val)])
        eval_seconds += time.perf_counter() - t_eval
        epoch_seconds = time.perf_counter() - t_epoch
        metrics = EpochMetrics(
            epoch=epoch,
            train_loss=float(loss_sum) / seen,
            train_accuracy=float(correct_sum) / seen,
            val_loss=None if val is None else val.loss,
            val_accuracy=None if val is None else val.accuracy,
            seconds=epoch_seconds,
            lr=lr,
            images_per_second=seen / max(epoch_seconds, 1e-9),
            train_eval_loss=None if probe is None else probe.loss,
            train_eval_accuracy=None if probe is None else probe.accuracy,
        )
        history.append(metrics)
        w = first_conv_weight(model)
        if w is not None:
            kernels.append(w)
        if cfg.early_stopping_patience is not None and val is not None:
            if val.loss < best["loss"]:
                best = {"loss": val.loss, "epoch": epoch, "bad": 0, "state": None}
                best["state"] = _cpu_state(model.state_dict())
            else:
                best["bad"] += 1
                early_stopped = best["bad"] >= cfg.early_stopping_patience
        if on_epoch is not None:
            state = _checkpoint_state(
                model, opt, sched, device, cfg, epoch=epoch, step=step,
                history=history, kernels=kernels, best=best,
            )  # fmt: skip
            on_epoch(metrics, state)

    # Wall time rather than per-step timers: on a GPU the steps run asynchronously.
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_seconds = time.perf_counter() - t_start - eval_seconds
    if early_stopped and best["state"] is not None:
        model.load_state_dict(best["state"])
    test = None
    if len(data.test_y):
        test = measure(data.test_x, data.test_y)
    return TrainResult(
        history=tuple(history),
        steps=step,
        epochs_completed=len(history),
        stopped=stopped,
        early_stopped=early_stopped,
        best_epoch=best["epoch"] if cfg.early_stopping_patience is not None else None,
        train_seconds=train_seconds,
        images_per_second=images_seen / max(train_seconds, 1e-9),
        device=str(device),
        test=test,
        kernel_history=tuple(kernels),
    )

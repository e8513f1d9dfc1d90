"""Tune the fast preset on validation splits only; the held-out images are never looked at.

For each tuning seed: the 10,000 MNIST t10k images are split 8,000/2,000 exactly as
``train_speed.py`` splits them for that seed; the 2,000 are set aside untouched, and the 8,000
are split again 6,400 (training) / 1,600 (validation), stratified, from the same seed. Every
candidate trains on the 6,400 and is scored on the 1,600. Report on fresh seeds with
``train_speed.py`` afterwards (the log of what was tried is ``fast_preset_tuning.md``).

Prints, per candidate: validation accuracy per seed, median and worst, the median training
seconds (wall, and the process's CPU time, training and validation included) scaled to 8,000
images, and with ``--reference`` the tutorial loop's seconds on 8,000 images (measured at the
start of this run) divided by that: the speed-up it would give. Training runs on 1 thread by
default: on a loaded machine the CPU time of a 1-thread run is a fair cost where wall time is
not; compare candidates by their CPU time relative to ``base`` in the same run, or measure
that ratio alone with ``--cost N`` (N interleaved runs of each on the first seed). Probes
(``PROBES``: weight averaging, test-time shifts, schedule shapes, ...) try what the engine does
not offer yet; a test-time-augmented evaluation runs inside the costed time, so it is paid for.
Usage:

    python benchmarks/tune_fast_preset.py --seeds 1 2 3 4 5 6 \
        --candidates base epochs=3 pool=max ema=0.98 tta=5,c1=8 [--reference]
    python benchmarks/tune_fast_preset.py --seeds 1 --cost 5 --candidates base epochs=3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from train_speed import load_all, reference_loop, split  # noqa: E402

from cnnlab import training  # noqa: E402
from cnnlab.data import DataBundle, normalize  # noqa: E402
from cnnlab.models import PRESETS, LayerSpec, ModelSpec, build_model  # noqa: E402
from cnnlab.splits import holdout_bundle  # noqa: E402
from cnnlab.training import FAST_PRESET_CONFIG, Progress, TrainConfig, train  # noqa: E402

N_VAL = 1600


def fast_spec(
    c1: int = 16,
    c2: int = 32,
    hidden: int = 128,
    k1: int = 5,
    pool: str = "avg",
    drop: float = 0,
    c3: int = 0,
    g2: int = 1,
) -> ModelSpec:
    """The fast preset's architecture with its widths as parameters (defaults: the preset).

    ``pool``: "avg" or "max"; ``drop``: dropout before the output layer; ``c3``: a third conv;
    ``g2``: groups of the second conv.
    """
    layers = [
        (
            "conv",
            {"out_channels": c1, "kernel": k1, "padding": "valid", "stride": 2, "bias": False},
        ),
        ("batchnorm", {}),
        ("relu", {}),
        (
            "conv",
            {"out_channels": c2, "kernel": 3, "padding": "valid", "bias": False}
            | ({"groups": g2} if g2 > 1 else {}),
        ),
        (f"{pool}pool", {"kernel": 2}),
        ("batchnorm", {}),
        ("relu", {}),
        # A third conv (c3 filters, 3×3 valid on the pooled 5×5 maps), when c3 is set.
        *(
            [
                ("conv", {"out_channels": c3, "kernel": 3, "padding": "valid", "bias": False}),
                ("batchnorm", {}),
                ("relu", {}),
            ]
            if c3
            else []
        ),
        ("flatten", {}),
        ("linear", {"out_features": hidden}),
        ("relu", {}),
        *([("dropout", {"p": drop})] if drop else []),
        ("linear", {"out_features": "classes"}),
    ]
    return ModelSpec(tuple(LayerSpec(kind, params) for kind, params in layers), "fast")


ARCH = {
    "c1": int,
    "c2": int,
    "hidden": int,
    "k1": int,
    "pool": str,
    "drop": float,
    "c3": int,
    "g2": int,
}
# Probes: what the engine does not offer (yet), tried here before any of it is built in.
# ema: decay of an exponential moving average of the weights (the average is evaluated);
# swa: 1 averages the weights of the last epoch's steps equally instead; emabuf: 1 (the
# default) averages the batch-norm statistics too, 0 keeps the trained model's; tta: views
# averaged at evaluation (1 + up to 8 one-pixel shifts); pct, div, fdiv, anneal: OneCycleLR's
# pct_start, div_factor, final_div_factor, anneal_strategy; bnmom: batch norm momentum;
# whiten: 1 starts the first conv as the PCA basis of training patches, 2 also freezes it.
PROBES = {
    "ema": float,
    "swa": int,
    "emabuf": int,
    "tta": int,
    "pct": float,
    "div": float,
    "fdiv": float,
    "anneal": str,
    "bnmom": float,
    "whiten": int,
}


def candidate(name: str) -> tuple[ModelSpec, TrainConfig, dict[str, Any]]:
    """A named variant of the fast preset: ``key=value`` pairs joined by commas.

    Keys: those of ``ARCH`` (architecture, see ``fast_spec``), those of ``PROBES``, and any
    TrainConfig field (``epochs=3,augment=1,augment_shift=1``). ``base`` is
    the preset as it stands.
    """
    arch: dict[str, Any] = {}
    cfg: dict[str, Any] = {}
    probes: dict[str, Any] = {}
    for pair in [] if name == "base" else name.split(","):
        key, value = pair.split("=")
        if key in ARCH:
            arch[key] = ARCH[key](value)
        elif key in PROBES:
            probes[key] = PROBES[key](value)
        else:
            kind = type(getattr(FAST_PRESET_CONFIG, key))
            cfg[key] = bool(int(value)) if kind is bool else kind(value)
    return fast_spec(**arch), replace(FAST_PRESET_CONFIG, **cfg), probes


def main() -> None:
    """Score each candidate on the validation splits of the tuning seeds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO / "../shared/data/mnist-t10k")
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--candidates", nargs="+", default=["base"])
    parser.add_argument("--reference", action="store_true", help="time the tutorial loop first")
    parser.add_argument(
        "--cost",
        type=int,
        metavar="N",
        help="instead of scoring: N interleaved runs each on the first seed, CPU time vs the first",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="1: the CPU time stays a fair cost under load"
    )
    args = parser.parse_args()
    if fast_spec().to_dict() != PRESETS["fast"].to_dict():
        sys.exit("fast_spec() no longer builds PRESETS['fast']: update it first.")
    x, y = load_all(args.data)
    threads = args.threads
    ref_s = None
    if args.reference:
        outer = split(x, y, args.seeds[0])
        ref_s, ref_acc = reference_loop(outer)
        print(f"tutorial loop on 8,000 (seed {args.seeds[0]}): {ref_s:.2f} s, acc {ref_acc:.4f}")
    # The validation splits: the 8,000 kept by the seed's outer split, split again 6,400/1,600.
    splits = {}
    for seed in args.seeds:
        outer = split(x, y, seed)
        splits[seed] = holdout_bundle(
            "mnist", outer.classes, outer.train_x.numpy(), outer.train_y.numpy(), N_VAL, seed
        )
    if args.cost:
        cost(args.candidates, splits[args.seeds[0]], args.cost, threads)
    else:
        score(args.candidates, splits, threads, ref_s)


SHIFTS = ((0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))


def shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Images moved by (dy, dx) pixels, zeros shifted in."""
    padded = F.pad(x, (1, 1, 1, 1))
    h, w = x.shape[-2:]
    return padded[..., 1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]


def probe_accuracy(model: nn.Module, data: DataBundle, views: int) -> float:
    """Accuracy of ``model`` on the test images, logits averaged over ``views`` shifted views."""
    model.eval()
    x = normalize(data.test_x, data.mean, data.std).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        logits = sum(model(shifted(x, dy, dx)) for dy, dx in SHIFTS[:views])
    return float((logits.argmax(1) == data.test_y).float().mean())


def whiten(model: nn.Module, data: DataBundle, freeze: bool) -> None:
    """Set the first conv's filters to the top principal directions of training patches."""
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    c, k = conv.out_channels, conv.kernel_size[0]
    x = normalize(data.train_x[:2000], data.mean, data.std)
    patches = F.unfold(x, k, stride=conv.stride).transpose(1, 2).reshape(-1, k * k)
    eigval, eigvec = torch.linalg.eigh(torch.cov(patches.T))
    top = eigvec[:, -c:].T.flip(0) / (eigval[-c:].flip(0)[:, None] + 1e-2).sqrt()
    with torch.no_grad():
        conv.weight.copy_(top.reshape(conv.weight.shape))
    conv.weight.requires_grad_(not freeze)


def fit(
    spec: ModelSpec,
    cfg: TrainConfig,
    probes: dict[str, Any],
    data: DataBundle,
    seed: int,
    threads: int,
) -> tuple:
    """Train one candidate: (validation accuracy, wall and CPU seconds per 8,000 images)."""
    torch.manual_seed(seed)
    model = build_model(spec, data.input_shape, data.num_classes)
    cpu = time.process_time()
    if "bnmom" in probes:
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = probes["bnmom"]
    if probes.get("whiten"):
        whiten(model, data, probes["whiten"] == 2)
    on_step = None
    ema = None
    if probes.get("ema") or probes.get("swa"):
        ema = AveragedModel(
            model,
            multi_avg_fn=get_ema_multi_avg_fn(probes["ema"]) if probes.get("ema") else None,
            use_buffers=bool(probes.get("emabuf", 1)),
        )

        def on_step(progress: Progress) -> None:
            if not probes.get("swa") or progress.epoch == progress.epochs:
                ema.update_parameters(model)

    sched_keys = {"pct": "pct_start", "div": "div_factor", "fdiv": "final_div_factor"}
    sched_kw = {v: probes[k] for k, v in sched_keys.items() if k in probes}
    if "anneal" in probes:
        sched_kw["anneal_strategy"] = probes["anneal"]
    original = training._scheduler

    def scheduler(opt: torch.optim.Optimizer, c: TrainConfig, total: int) -> Any:
        return torch.optim.lr_scheduler.OneCycleLR(opt, c.lr, total_steps=total, **sched_kw)

    if sched_kw:
        training._scheduler = scheduler
    try:
        result = train(
            model, data, replace(cfg, seed=seed, threads=threads, val_fraction=0), on_step=on_step
        )
    finally:
        training._scheduler = original
    acc = result.test.accuracy
    if ema is not None or probes.get("tta", 1) > 1:  # the trained model's own is result.test
        acc = probe_accuracy(model if ema is None else ema.module, data, probes.get("tta", 1))
    scale = 8000 / len(data.train_y)
    return acc, result.train_seconds * scale, (time.process_time() - cpu) * scale


def score(
    names: list[str], splits: dict[int, DataBundle], threads: int, ref_s: float | None
) -> None:
    """Print each candidate's validation accuracy per seed, median, worst and cost."""
    for name in names:
        spec, cfg, probes = candidate(name)
        accs, secs, cpus = zip(
            *(fit(spec, cfg, probes, data, seed, threads) for seed, data in splits.items()),
            strict=True,
        )
        med_s = statistics.median(secs)
        ratio = "" if ref_s is None else f"  speed-up {ref_s / med_s:4.1f}×"
        print(
            f"{name:<44} val {' '.join(f'{a:.4f}' for a in accs)}  median "
            f"{statistics.median(accs):.4f} worst {min(accs):.4f}  wall {med_s:5.2f} s/8k, "
            f"CPU {statistics.median(cpus):5.2f} s/8k{ratio}",
            flush=True,
        )


def cost(names: list[str], data: DataBundle, repeats: int, threads: int) -> None:
    """Print each candidate's CPU time relative to the first, from interleaved repeats."""
    cpus: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:  # round robin, so that drift in the machine's load hits all alike
            cpus[name].append(fit(*candidate(name), data, 0, threads)[2])
    first = statistics.median(cpus[names[0]])
    for name, values in cpus.items():
        med = statistics.median(values)
        print(
            f"{name:<44} CPU median {med:5.2f} s/8k, min {min(values):5.2f} "
            f"({med / first:.2f}× {names[0]}; runs {', '.join(f'{v:.2f}' for v in values)})",
            flush=True,
        )


if __name__ == "__main__":
    main()

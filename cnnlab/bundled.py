"""Small trained networks shipped with the app under ``assets/models``, so the feature-map
explorer works offline before a learner trains anything.

Each model is two files written by ``python -m cnnlab.train ... --export assets/models/NAME``:
``NAME.safetensors`` (tensors only, it cannot run code) and ``NAME.json`` (the layer spec, input
shape, classes, normalisation, test accuracy, and the exact command line that made it).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from cnnlab.models import ModelSpec, SpecError, build_model
from cnnlab.runs import RunStore, load_weights

MODELS_DIR = Path(__file__).resolve().parents[1] / "assets" / "models"
BUNDLED = ("digits", "shapes")
# How a photo becomes this network's input: MNIST-style digit centring, or a square resize.
PREPROCESS = {"mnist": "digits", "shapes": "square"}


@dataclass(frozen=True)
class BundledInfo:
    """What ``NAME.json`` says about a bundled network."""

    name: str
    title: str
    spec: ModelSpec
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dataset: str
    preprocess: str
    test_accuracy: float
    command: str


def export_run(
    store: RunStore, owner: str, run_id: str, path: str | Path, argv: Sequence[str]
) -> Path:
    """Copy a finished run's weights to ``path.safetensors`` and describe it in ``path.json``."""
    run = store.get_run(owner, run_id)
    weights = store.weights_path(owner, run_id)
    if weights is None:
        raise ValueError("This run has no saved weights to export.")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, target.with_suffix(".safetensors"))
    meta = run.meta
    info = {
        "name": target.name,
        "title": run.name,
        "spec": run.spec,
        "input_shape": meta["input_shape"],
        "classes": meta["classes"],
        "mean": meta["mean"],
        "std": meta["std"],
        "dataset": run.dataset,
        "preprocess": PREPROCESS.get(run.dataset, "square"),
        "test_accuracy": run.final.get("test_accuracy"),
        "command": "python -m cnnlab.train " + " ".join(argv),
    }
    target.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    return target


def _info(data: dict[str, Any]) -> BundledInfo:
    return BundledInfo(
        str(data["name"]),
        str(data["title"]),
        ModelSpec.from_dict(data["spec"]),
        tuple(int(n) for n in data["input_shape"]),  # type: ignore[arg-type]
        tuple(str(c) for c in data["classes"]),
        tuple(float(m) for m in data["mean"]),
        tuple(float(s) for s in data["std"]),
        str(data["dataset"]),
        str(data["preprocess"]),
        float(data["test_accuracy"]),
        str(data["command"]),
    )


def bundled_info(name: str, folder: Path = MODELS_DIR) -> BundledInfo:
    """Read ``folder/name.json``; a missing or malformed file raises ``ValueError``."""
    path = folder / f"{name}.json"
    try:
        return _info(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"The bundled model {name!r} cannot be read ({exc}).") from exc


def load_bundled(name: str, folder: Path = MODELS_DIR) -> tuple[BundledInfo, nn.Sequential]:
    """The bundled network ``name`` with its weights, on the CPU in ``eval()`` mode."""
    from safetensors import SafetensorError

    info = bundled_info(name, folder)
    try:
        model = build_model(info.spec, info.input_shape, len(info.classes))
        model.load_state_dict(load_weights(folder / f"{name}.safetensors"), strict=True)
    except (SpecError, SafetensorError, RuntimeError, OSError) as exc:
        raise ValueError(f"The bundled model {name!r} cannot be loaded ({exc}).") from exc
    return info, model.eval()

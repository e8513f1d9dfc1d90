"""The home page's CNN pipeline (input → conv → ReLU → pool → flatten → FC → softmax), with
every shape and parameter count read off a real torch model rather than written by hand."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline: its name, what it does, its output shape and its parameters."""

    name: str
    detail: str
    output_shape: tuple[int, ...]
    params: int


def pipeline_model(
    channels: int = 1, filters: int = 8, kernel: int = 3, pool: int = 2, size: int = 28,
    classes: int = 10,
) -> nn.Sequential:  # fmt: skip
    """The smallest real CNN: one 'same' convolution, ReLU, max pool, flatten, linear, softmax."""
    flat = filters * (size // pool) ** 2
    return nn.Sequential(
        nn.Conv2d(channels, filters, kernel, padding="same"),
        nn.ReLU(),
        nn.MaxPool2d(pool),
        nn.Flatten(),
        nn.Linear(flat, classes),
        nn.Softmax(dim=1),
    )


def pipeline_stages(
    channels: int = 1, filters: int = 8, kernel: int = 3, pool: int = 2, size: int = 28,
    classes: int = 10,
) -> list[Stage]:  # fmt: skip
    """Run a zero image through :func:`pipeline_model` and describe each stage's output."""
    model = pipeline_model(channels, filters, kernel, pool, size, classes)
    x = torch.zeros(1, channels, size, size)  # (B, C, H, W)
    stages = [Stage("Input image", "", tuple(x.shape[1:]), 0)]
    details = [
        f"{filters} filters {kernel}×{kernel}",
        "max(0, x)",
        f"{pool}×{pool} windows",
        "one long vector",
        "a score per class",
        "probabilities, sum 1",
    ]
    names = ["Convolution", "ReLU", "Max pool", "Flatten", "Fully connected", "Softmax"]
    with torch.no_grad():
        for name, detail, layer in zip(names, details, model, strict=True):
            x = layer(x)
            params = sum(p.numel() for p in layer.parameters())
            stages.append(Stage(name, detail, tuple(x.shape[1:]), params))
    return stages


def _shape(shape: tuple[int, ...]) -> str:
    # Feature maps read as H×W×C in textbooks; vectors as their length.
    if len(shape) == 3:
        c, h, w = shape
        return f"{h}×{w}×{c}"
    return str(shape[0])


def pipeline_dot(stages: list[Stage]) -> str:
    """A Graphviz DOT diagram of the stages, left to right, with shapes and parameter counts."""
    lines = [
        "digraph cnn {",
        '  rankdir=LR; bgcolor="transparent";',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11,',
        '        fillcolor="#e0ecff", color="#2563eb"];',
        '  edge [color="#475569"];',
    ]
    for i, s in enumerate(stages):
        label = "\\n".join(
            part
            for part in (
                s.name,
                s.detail,
                f"→ {_shape(s.output_shape)}" if i else _shape(s.output_shape),
                f"{s.params:,} weights" if s.params else "",
            )
            if part
        )
        style = ""
        if i == 0:
            style = ', fillcolor="#f1f5f9", color="#64748b"'
        elif i == len(stages) - 1:
            style = ', fillcolor="#dcfce7", color="#16a34a"'
        lines.append(f'  s{i} [label="{label}"{style}];')
    lines.append("  " + " -> ".join(f"s{i}" for i in range(len(stages))) + ";")
    lines.append("}")
    return "\n".join(lines)

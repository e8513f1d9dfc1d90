"""Why deep nets need skip connections: per-layer gradient norms of plain and residual networks.

Both networks have the same number of 3×3 convolutions (``depth``), the same width and the same
head, and both are plain :class:`~cnnlab.models.ModelSpec` specs, so the page can also train them
side by side through the ordinary worker queue. Gradients are measured by autograd on real
images: nothing here is asserted, everything is measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.models import LayerSpec, ModelSpec, build_model
from cnnlab.seeding import seeded

MAX_DEPTH = 60


def deep_spec(depth: int, width: int, residual: bool, batch_norm: bool) -> ModelSpec:
    """``depth`` 3×3 convs of ``width`` channels (the first with stride 2), then pool + linear.

    Plain: conv → (batch norm) → ReLU, ``depth`` times. Residual: ``depth / 2`` basic blocks,
    each two of those convs with the input added back (a 1×1 projection where the shape
    changes, which is not counted in ``depth``).
    """
    if not 2 <= depth <= MAX_DEPTH or depth % 2:
        raise ValueError(f"Depth must be an even number of conv layers from 2 to {MAX_DEPTH}.")
    if not 1 <= width <= 64:
        raise ValueError("Width must be between 1 and 64 channels.")
    layers: list[LayerSpec] = []
    if residual:
        for block in range(depth // 2):
            params = {"out_channels": width, "stride": 2 if block == 0 else 1}
            layers.append(LayerSpec("residual", {**params, "batch_norm": batch_norm}))
    else:
        for i in range(depth):
            conv = {"out_channels": width, "kernel": 3, "padding": 1, "bias": not batch_norm}
            layers.append(LayerSpec("conv", {**conv, "stride": 2 if i == 0 else 1}))
            if batch_norm:
                layers.append(LayerSpec("batchnorm", {}))
            layers.append(LayerSpec("relu", {}))
    layers += [LayerSpec("global_avgpool", {}), LayerSpec("linear", {"out_features": "classes"})]
    kind = "residual" if residual else "plain"
    return ModelSpec(tuple(layers), f"{kind}{depth}{'_bn' if batch_norm else ''}")


def _convs(model: nn.Module) -> list[nn.Conv2d]:
    """The network's 3×3 convolutions in forward order (projections left out)."""
    return [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]


def conv_gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """‖∂loss/∂W‖ (Frobenius) of every 3×3 conv's weight, first layer first, for one batch."""
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    return [float(conv.weight.grad.norm()) for conv in _convs(model)]


@dataclass(frozen=True)
class GradientFlow:
    """Gradient norms per conv layer at initialisation and after ``steps`` training steps."""

    name: str
    at_init: tuple[float, ...]
    after: tuple[float, ...]
    losses: tuple[float, ...]  # training loss at each step

    @property
    def first_to_last(self) -> float:
        """How much smaller the first layer's gradient is than the last one's, at init."""
        return self.at_init[0] / self.at_init[-1]


def gradient_flow(
    spec: ModelSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    steps: int = 20,
    lr: float = 0.05,
    seed: int = 0,
) -> GradientFlow:
    """Build ``spec`` from ``seed``, measure its conv gradients, train ``steps`` SGD steps, again.

    ``x`` (N, C, H, W) float and ``y`` (N,) are one fixed batch: the same images for every
    network, so the curves differ only by architecture. Plain SGD with momentum 0.9 keeps the
    optimiser from rescaling the gradients that are being compared.
    """
    if not 0 <= steps <= 500:
        raise ValueError("Steps must be between 0 and 500.")
    with seeded(seed):
        model = build_model(spec, tuple(x.shape[1:]), num_classes).train()
    at_init = conv_gradient_norms(model, x, y)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    after = conv_gradient_norms(model, x, y)
    return GradientFlow(spec.name, tuple(at_init), tuple(after), tuple(losses))

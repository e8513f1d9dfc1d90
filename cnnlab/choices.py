"""Training choices, measured: classification losses as functions of one logit, optimisers on
2-D toy loss landscapes, and the learning-rate range test. Gradients come from autograd and
steps from ``torch.optim`` itself, so what the page draws is what training does."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

LOSSES = ("cross_entropy", "bce", "mse")
LOSS_LABELS = {
    "cross_entropy": "cross-entropy (softmax)",
    "bce": "binary cross-entropy (one-vs-rest sigmoids)",
    "mse": "mean squared error (softmax vs one-hot)",
}


def classification_loss(kind: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean loss of (N, K) ``logits`` against (N,) class indices, for each kind in LOSSES."""
    if kind == "cross_entropy":
        return nn.functional.cross_entropy(logits, target)
    one_hot = nn.functional.one_hot(target, logits.shape[1]).to(logits.dtype)
    if kind == "bce":
        # Every class is its own yes/no question; mean over classes, as BCEWithLogitsLoss does.
        return nn.functional.binary_cross_entropy_with_logits(logits, one_hot)
    if kind == "mse":
        return nn.functional.mse_loss(logits.softmax(dim=1), one_hot)
    raise ValueError(f"Unknown loss {kind!r}; choose one of {', '.join(LOSSES)}.")


@dataclass(frozen=True)
class LossCurve:
    """A loss and its gradient as one logit moves, the other logits held fixed."""

    kind: str
    z: tuple[float, ...]  # the moving logit
    loss: tuple[float, ...]
    grad: tuple[float, ...]  # ∂loss/∂z


def loss_curve(
    kind: str, classes: int = 3, correct: bool = True, z_range: float = 8.0, points: int = 161
) -> LossCurve:
    """Sweep the logit of the true class (``correct``) or of a wrong one from −z to +z.

    The other logits stay at 0. Each point is one example's loss, and its gradient with
    respect to the moving logit comes from autograd.
    """
    if not 2 <= classes <= 100:
        raise ValueError("Choose between 2 and 100 classes.")
    if not (0 < z_range <= 50 and 3 <= points <= 2001):
        raise ValueError("The sweep needs a positive range up to 50 and 3 to 2001 points.")
    z = torch.linspace(-z_range, z_range, points, dtype=torch.float64, requires_grad=True)
    logits = torch.zeros(points, classes, dtype=torch.float64)
    moving = 0 if correct else 1
    logits = logits.index_put((torch.arange(points), torch.full((points,), moving)), z)
    target = torch.zeros(points, dtype=torch.int64)  # class 0 is the true class
    # One loss per point: the mean over a batch of one. Summing gives each point its own grad.
    losses = torch.stack(
        [classification_loss(kind, logits[i : i + 1], target[i : i + 1]) for i in range(points)]
    )
    (grad,) = torch.autograd.grad(losses.sum(), z)
    return LossCurve(
        kind, tuple(z.detach().tolist()), tuple(losses.detach().tolist()), tuple(grad.tolist())
    )


# ---------------------------------------------------------------------------------------------
# Optimisers on toy landscapes
# ---------------------------------------------------------------------------------------------


def rosenbrock(p: torch.Tensor) -> torch.Tensor:
    """(1 − x)² + 100 (y − x²)²: a curved, narrow valley with its minimum 0 at (1, 1)."""
    x, y = p[..., 0], p[..., 1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def narrow_valley(p: torch.Tensor) -> torch.Tensor:
    """x²/20 + 5y²: a straight valley 50 times steeper across than along; minimum 0 at (0, 0)."""
    x, y = p[..., 0], p[..., 1]
    return x**2 / 20 + 5 * y**2


def saddle(p: torch.Tensor) -> torch.Tensor:
    """x²/2 + y⁴/4 − y²/2: a saddle at (0, 0) between two minima −1/4 at (0, ±1).

    Starting almost on the ridge (y ≈ 0), the gradient across it is tiny: plain gradient
    descent lingers near the saddle; momentum and adaptive steps escape sooner.
    """
    x, y = p[..., 0], p[..., 1]
    return x**2 / 2 + y**4 / 4 - y**2 / 2


LANDSCAPES: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], tuple[float, float], tuple]] = {
    # name: (function, start, (x range, y range) to draw)
    "rosenbrock": (rosenbrock, (-1.5, 2.0), ((-2.0, 2.0), (-1.0, 3.0))),
    "narrow_valley": (narrow_valley, (-9.0, 1.5), ((-10.0, 10.0), (-2.0, 2.0))),
    "saddle": (saddle, (-2.5, 1e-3), ((-3.0, 3.0), (-1.6, 1.6))),
}
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam", "adamw")
OPTIMIZER_LABELS = {
    "sgd": "SGD",
    "momentum": "SGD + momentum 0.9",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adamw": "AdamW (weight decay 0.1)",
}


def make_optimizer(name: str, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """The torch optimiser behind each name in OPTIMIZERS, with the page's settings."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.1)
    raise ValueError(f"Unknown optimiser {name!r}; choose one of {', '.join(OPTIMIZERS)}.")


@dataclass(frozen=True)
class Path:
    """Where an optimiser went on a landscape: points (steps + 1, 2) and the loss at each."""

    optimizer: str
    points: tuple[tuple[float, float], ...]
    losses: tuple[float, ...]
    diverged: bool  # the loss left the finite numbers (too large a learning rate)


def optimizer_path(landscape: str, optimizer: str, lr: float, steps: int) -> Path:
    """Run ``optimizer`` from the landscape's start for ``steps`` steps, recording every point."""
    if landscape not in LANDSCAPES:
        raise ValueError(f"Unknown landscape {landscape!r}.")
    if not (0 < lr <= 10 and math.isfinite(lr)):
        raise ValueError("The learning rate must be above 0 and at most 10.")
    if not 1 <= steps <= 5000:
        raise ValueError("Choose between 1 and 5,000 steps.")
    f, start, _ = LANDSCAPES[landscape]
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer(optimizer, [p], lr)
    points, losses = [tuple(start)], [float(f(p.detach()))]
    for _ in range(steps):
        opt.zero_grad()
        loss = f(p)
        loss.backward()
        opt.step()
        value = float(f(p.detach()))
        if not math.isfinite(value) or not torch.isfinite(p).all():
            return Path(optimizer, tuple(points), tuple(losses), diverged=True)
        points.append((float(p.detach()[0]), float(p.detach()[1])))
        losses.append(value)
    return Path(optimizer, tuple(points), tuple(losses), diverged=False)


def landscape_grid(
    landscape: str, points: int = 121
) -> tuple[list[float], list[float], list[list[float]]]:
    """x, y and the loss on a ``points``×``points`` grid over the landscape's drawing range."""
    f, _, ((x0, x1), (y0, y1)) = LANDSCAPES[landscape]
    xs = torch.linspace(x0, x1, points, dtype=torch.float64)
    ys = torch.linspace(y0, y1, points, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (y, x, 2)
    return xs.tolist(), ys.tolist(), f(grid).tolist()


# ---------------------------------------------------------------------------------------------
# Learning-rate range test
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RangeTest:
    """Loss after each step while the learning rate grows exponentially (Smith 2017)."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]  # smoothed (exponential moving average, bias-corrected)
    suggestion: float  # where the smoothed loss falls fastest, before its lowest point


def lr_range_test(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    lr_min: float = 1e-4,
    lr_max: float = 10.0,
    steps: int = 100,
    batch_size: int = 64,
    seed: int = 0,
) -> RangeTest:
    """Train ``model`` with SGD + momentum for ``steps`` steps, the LR growing from ``lr_min``
    to ``lr_max``; stop early once the loss explodes (4× its best). Mutates ``model``."""
    if not 0 < lr_min < lr_max <= 100:
        raise ValueError("Need 0 < lr_min < lr_max ≤ 100.")
    if not 10 <= steps <= 1000:
        raise ValueError("Choose between 10 and 1,000 steps.")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr_min, momentum=0.9)
    factor = (lr_max / lr_min) ** (1 / (steps - 1))
    lrs, losses = [], []
    average, best = 0.0, math.inf
    model.train()
    for step in range(steps):
        lr = lr_min * factor**step
        for group in opt.param_groups:
            group["lr"] = lr
        batch = torch.randint(0, len(y), (batch_size,), generator=gen)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        loss.backward()
        opt.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            break
        average = 0.9 * average + 0.1 * value
        smoothed = average / (1 - 0.9 ** (step + 1))
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if smoothed > 4 * best:
            break
    if len(losses) < 3:
        raise ValueError("The loss exploded at once: lower the smallest learning rate.")
    # The steepest fall before the lowest loss: past it the curve only rises, and the wiggles of
    # an exploding loss can fall steeply too without meaning anything.
    lowest = int(torch.tensor(losses).argmin())
    if lowest < 2:
        raise ValueError("The loss never fell: raise the largest learning rate or the steps.")
    logs = torch.tensor(lrs[: lowest + 1]).log()
    slopes = torch.diff(torch.tensor(losses[: lowest + 1])) / torch.diff(logs)
    suggestion = lrs[int(slopes.argmin())]
    return RangeTest(tuple(lrs), tuple(losses), suggestion)

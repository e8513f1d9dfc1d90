"""Activation functions and their gradients, taken from the torch modules themselves (autograd is
the oracle for f′), where the gradient vanishes, softmax with temperature, and what each does
to a real feature map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

NAMES = ("relu", "leaky_relu", "prelu", "elu", "gelu", "silu", "sigmoid", "tanh")
TITLES = {
    "relu": "ReLU",
    "leaky_relu": "Leaky ReLU",
    "prelu": "PReLU",
    "elu": "ELU",
    "gelu": "GELU",
    "silu": "SiLU (swish)",
    "sigmoid": "Sigmoid",
    "tanh": "tanh",
}
FORMULAS = {
    "relu": r"\max(0, x)",
    "leaky_relu": r"\max(0, x) + a\,\min(0, x)",
    "prelu": r"\max(0, x) + a\,\min(0, x),\ a \text{ learned}",
    "elu": r"x \text{ if } x>0 \text{ else } a\,(e^{x}-1)",
    "gelu": r"x\,\Phi(x)",
    "silu": r"x\,\sigma(x)",
    "sigmoid": r"\sigma(x) = 1/(1+e^{-x})",
    "tanh": r"\tanh(x)",
}
VANISHING = 0.01
"""|f′| below this counts as a vanishing gradient (a hundred steps of it shrink a signal 10²⁰⁰×)."""


def module(name: str, slope: float = 0.1) -> nn.Module:
    """The torch module for ``name``; ``slope`` is Leaky ReLU's / PReLU's a and ELU's α."""
    modules = {
        "relu": lambda: nn.ReLU(),
        "leaky_relu": lambda: nn.LeakyReLU(slope),
        "prelu": lambda: nn.PReLU(init=slope),
        "elu": lambda: nn.ELU(slope),
        "gelu": lambda: nn.GELU(),
        "silu": lambda: nn.SiLU(),
        "sigmoid": lambda: nn.Sigmoid(),
        "tanh": lambda: nn.Tanh(),
    }
    if name not in modules:
        raise ValueError(f"Unknown activation {name!r}. Choose one of: {', '.join(NAMES)}.")
    return modules[name]()


@dataclass(frozen=True)
class Curve:
    """f and f′ of one activation over ``x``, and the stretches where f′ vanishes."""

    name: str
    x: np.ndarray
    f: np.ndarray
    df: np.ndarray
    vanishing: tuple[tuple[float, float], ...]
    """(from, to) intervals of x where |f′| < :data:`VANISHING`."""


def _intervals(x: np.ndarray, mask: np.ndarray) -> tuple[tuple[float, float], ...]:
    """The (first x, last x) of every run of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return tuple((float(x[a]), float(x[b])) for a, b in zip(starts, ends, strict=True))


def curve(name: str, lo: float = -6.0, hi: float = 6.0, n: int = 601, slope: float = 0.1) -> Curve:
    """f(x) and f′(x) on ``n`` points in [lo, hi], f′ by autograd through the module."""
    if not lo < hi:
        raise ValueError(f"The x range needs from < to, got {lo} to {hi}.")
    x = torch.linspace(lo, hi, n, dtype=torch.float64, requires_grad=True)
    f = module(name, slope).to(torch.float64)(x)
    (df,) = torch.autograd.grad(f.sum(), x)
    xs = x.detach().numpy()
    dfs = df.numpy()
    return Curve(name, xs, f.detach().numpy(), dfs, _intervals(xs, np.abs(dfs) < VANISHING))


@dataclass(frozen=True)
class Softmax:
    """Softmax of ``logits`` at ``temperature``: probabilities and the curve of p₁ against z₁."""

    logits: np.ndarray
    temperature: float
    probs: np.ndarray
    z: np.ndarray
    p_first: np.ndarray
    dp_first: np.ndarray


def softmax(logits: list[float], temperature: float) -> Softmax:
    """softmax(z / T); p₁ and ∂p₁/∂z₁ = p₁(1 − p₁)/T (autograd) as z₁ sweeps, others fixed."""
    if temperature <= 0:
        raise ValueError(f"The temperature must be above 0, got {temperature}.")
    if len(logits) < 2:
        raise ValueError("Softmax needs at least two scores to share the probability between.")
    z = torch.tensor(logits, dtype=torch.float64)
    probs = torch.softmax(z / temperature, 0).numpy()
    sweep = torch.linspace(-8, 8, 321, dtype=torch.float64, requires_grad=True)
    zs = z.repeat(len(sweep), 1)
    zs = torch.cat([sweep[:, None], zs[:, 1:]], 1)
    p = torch.softmax(zs / temperature, 1)[:, 0]
    (dp,) = torch.autograd.grad(p.sum(), sweep)
    return Softmax(
        z.numpy(), temperature, probs, sweep.detach().numpy(), p.detach().numpy(), dp.numpy()
    )


@dataclass(frozen=True)
class MapStats:
    """An activation applied to a feature map: the result and what it kept."""

    output: np.ndarray
    zero_share: float
    lo: float
    hi: float


def apply_to_map(name: str, feature_map: np.ndarray, slope: float = 0.1) -> MapStats:
    """The activation on a (H, W) feature map, with its share of exact zeros and its range."""
    with torch.no_grad():
        out = module(name, slope)(torch.from_numpy(np.asarray(feature_map, np.float32))).numpy()
    return MapStats(out, float((out == 0).mean()), float(out.min()), float(out.max()))

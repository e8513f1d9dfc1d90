"""Adversarial examples: tiny, deliberate changes to an image that change the network's answer.

Both attacks move ``x`` to *increase* the cross-entropy loss of class ``target`` (untargeted:
push the image away from that class), inside an L∞ ball of radius ``epsilon`` around ``x``, in
the units of ``x`` (a page converts pixel units with the normalisation's std). ``clamp`` keeps
the result a valid image: a (low, high) pair of numbers or tensors broadcastable to ``x``.

- :func:`fgsm` (Goodfellow et al. 2015): one step, x + ε·sign(∇ₓ loss).
- :func:`pgd` (Madry et al. 2018): a random start in the ball, then ``steps`` signed-gradient
  steps of size ``step``, each projected back into the ball.
- :func:`smallest_flip`: the smallest ε (to a tolerance) at which an attack changes the
  prediction, found by a doubling scan then bisection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.attribution import check_inputs, class_scores

Bound = float | torch.Tensor


def _check_epsilon(epsilon: Bound, name: str = "ε") -> None:
    value = torch.as_tensor(epsilon)
    if not torch.isfinite(value).all() or (value < 0).any():
        raise ValueError(f"{name} must be a finite number ≥ 0, got {epsilon!r}.")


def _clamp(x: torch.Tensor, clamp: tuple[Bound, Bound] | None) -> torch.Tensor:
    if clamp is None:
        return x
    low, high = (torch.as_tensor(b, dtype=x.dtype, device=x.device) for b in clamp)
    return torch.maximum(torch.minimum(x, high), low)


def loss_gradient(model: nn.Module, x: torch.Tensor, target: int) -> tuple[float, torch.Tensor]:
    """Cross-entropy loss of class ``target`` at ``x`` and its gradient ∇ₓ loss."""
    check_inputs(model, x, target)
    batch = x.detach().requires_grad_(True)
    with torch.enable_grad():  # also when the caller is inside torch.no_grad()
        scores = class_scores(model, batch)
        if not 0 <= target < scores.shape[1]:
            raise ValueError(f"There is no class {target}; this network has {scores.shape[1]}.")
        loss = F.cross_entropy(scores, torch.tensor([target], device=x.device))
        (grad,) = torch.autograd.grad(loss, batch)
    return float(loss.detach()), grad


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    epsilon: Bound,
    clamp: tuple[Bound, Bound] | None = None,
) -> torch.Tensor:
    """Fast gradient sign method: x + ε·sign(∇ₓ loss), clamped when ``clamp`` is given."""
    _check_epsilon(epsilon)
    _, grad = loss_gradient(model, x, target)
    eps = torch.as_tensor(epsilon, dtype=x.dtype, device=x.device)
    return _clamp(x.detach() + eps * grad.sign(), clamp)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    epsilon: Bound,
    step: Bound,
    steps: int,
    seed: int = 0,
    clamp: tuple[Bound, Bound] | None = None,
    random_start: bool = True,
) -> torch.Tensor:
    """Projected gradient descent (ascent on the loss) in the L∞ ball of radius ``epsilon``."""
    _check_epsilon(epsilon)
    _check_epsilon(step, "The step size")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 1000:
        raise ValueError(f"PGD needs 1–1000 steps, got {steps!r}.")
    check_inputs(model, x, target)
    eps = torch.as_tensor(epsilon, dtype=x.dtype, device=x.device)
    size = torch.as_tensor(step, dtype=x.dtype, device=x.device)
    origin = x.detach()
    adv = origin
    if random_start:
        generator = torch.Generator().manual_seed(seed)
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device) * 2 - 1
        adv = _clamp(origin + noise * eps, clamp)
    for _ in range(steps):
        _, grad = loss_gradient(model, adv, target)
        adv = adv + size * grad.sign()
        adv = origin + torch.maximum(torch.minimum(adv - origin, eps), -eps)  # project
        adv = _clamp(adv, clamp)
    return adv


@dataclass(frozen=True)
class FlipSearch:
    """The outcome of :func:`smallest_flip`: ε (None if nothing up to the maximum flips it),
    the class predicted there, and how many attacks the search ran."""

    epsilon: float | None
    new_class: int | None
    attacks: int


def smallest_flip(
    attack: Callable[[float], torch.Tensor],
    model: nn.Module,
    original: int,
    max_epsilon: float,
    tolerance: float,
    scan: int = 8,
) -> FlipSearch:
    """The smallest ε in (0, ``max_epsilon``] at which ``attack(ε)`` is no longer ``original``.

    Scans ``scan`` ε doubling up to ``max_epsilon`` (flips usually need a small ε, so small
    values are tried first and densely) for the first that flips the prediction, then bisects
    between it and the last that did not, until the interval is below ``tolerance``. (A flip is
    not monotone in ε for every network, so this is the first flip the scan meets, refined.)
    """
    if not max_epsilon > 0 or not tolerance > 0 or scan < 1:
        raise ValueError("The search needs a positive maximum ε, tolerance and scan length.")
    attacks = 0

    def predicted(eps: float) -> int:
        nonlocal attacks
        attacks += 1
        perturbed = attack(eps)  # outside no_grad: the attack differentiates the loss
        with torch.no_grad():
            return int(class_scores(model, perturbed).argmax(1)[0])

    low, high, label = 0.0, None, None
    for i in range(scan):
        eps = max_epsilon / 2 ** (scan - 1 - i)
        got = predicted(eps)
        if got != original:
            high, label = eps, got
            break
        low = eps
    if high is None:
        return FlipSearch(None, None, attacks)
    while high - low > tolerance:
        mid = (low + high) / 2
        got = predicted(mid)
        if got != original:
            high, label = mid, got
        else:
            low = mid
    return FlipSearch(high, label, attacks)

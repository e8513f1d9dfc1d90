"""Losses of one logit, optimiser paths and the LR range test against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnlab.choices import (
    LANDSCAPES,
    LOSSES,
    OPTIMIZERS,
    classification_loss,
    landscape_grid,
    loss_curve,
    lr_range_test,
    optimizer_path,
)


def test_cross_entropy_curve_matches_its_closed_form() -> None:
    curve = loss_curve("cross_entropy", classes=3, points=41)
    z = torch.tensor(curve.z, dtype=torch.float64)
    # Other logits 0: loss = log(e^z + 2) − z and ∂/∂z = softmax(z) − 1.
    torch.testing.assert_close(
        torch.tensor(curve.loss, dtype=torch.float64), torch.log(z.exp() + 2) - z
    )
    torch.testing.assert_close(
        torch.tensor(curve.grad, dtype=torch.float64), z.exp() / (z.exp() + 2) - 1
    )


def test_bce_curve_matches_its_closed_form() -> None:
    curve = loss_curve("bce", classes=4, points=21)
    z = torch.tensor(curve.z, dtype=torch.float64)
    # Mean over 4 sigmoids: the moving one (target 1) plus three at logit 0 (target 0).
    expected = (nn.functional.softplus(-z) + 3 * math.log(2)) / 4
    torch.testing.assert_close(torch.tensor(curve.loss, dtype=torch.float64), expected)
    torch.testing.assert_close(
        torch.tensor(curve.grad, dtype=torch.float64), (torch.sigmoid(z) - 1) / 4
    )


def test_mse_on_softmax_stops_pushing_a_confidently_wrong_answer() -> None:
    # The lesson of the page: when the true class's logit is very low, cross-entropy still
    # pulls with a gradient of about −1, MSE on softmax barely at all.
    ce, mse = loss_curve("cross_entropy"), loss_curve("mse")
    assert ce.grad[0] == pytest.approx(-1.0, abs=1e-3)
    assert abs(mse.grad[0]) < 1e-3
    assert min(mse.grad) < -0.1  # it does pull hard in between


def test_a_wrong_class_logit_raises_every_loss() -> None:
    for kind in LOSSES:
        curve = loss_curve(kind, correct=False, points=11)
        assert list(curve.loss) == sorted(curve.loss), kind


def test_unknown_loss_and_bad_sweeps_are_refused() -> None:
    with pytest.raises(ValueError, match="Unknown loss"):
        classification_loss("hinge", torch.zeros(1, 2), torch.zeros(1, dtype=torch.int64))
    with pytest.raises(ValueError, match="classes"):
        loss_curve("mse", classes=1)
    with pytest.raises(ValueError, match="range"):
        loss_curve("mse", z_range=float("nan"))


def _valley_grad(x: float, y: float) -> tuple[float, float]:
    return x / 10, 10 * y  # ∇(x²/20 + 5y²)


def test_sgd_and_momentum_paths_follow_their_update_rules() -> None:
    lr = 0.05
    path = optimizer_path("narrow_valley", "sgd", lr, 5)
    x, y = path.points[0]
    for point in path.points[1:]:
        gx, gy = _valley_grad(x, y)
        x, y = x - lr * gx, y - lr * gy
        assert point == pytest.approx((x, y))
    path = optimizer_path("narrow_valley", "momentum", lr, 5)
    (x, y), (vx, vy) = path.points[0], (0.0, 0.0)
    for point in path.points[1:]:
        gx, gy = _valley_grad(x, y)
        vx, vy = 0.9 * vx + gx, 0.9 * vy + gy  # PyTorch's form: v = μv + g; p −= lr·v
        x, y = x - lr * vx, y - lr * vy
        assert point == pytest.approx((x, y))


def test_adam_path_follows_its_update_rule() -> None:
    lr, (b1, b2), eps = 0.1, (0.9, 0.999), 1e-8
    path = optimizer_path("narrow_valley", "adam", lr, 4)
    p = list(path.points[0])
    m, v = [0.0, 0.0], [0.0, 0.0]
    for t, point in enumerate(path.points[1:], start=1):
        g = _valley_grad(*p)
        for i in range(2):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            p[i] -= lr * (m[i] / (1 - b1**t)) / (math.sqrt(v[i] / (1 - b2**t)) + eps)
        assert point == pytest.approx(tuple(p))


@pytest.mark.parametrize("landscape", sorted(LANDSCAPES))
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimiser_lowers_every_landscape(landscape: str, optimizer: str) -> None:
    # Plain and momentum SGD take the raw gradient (Rosenbrock's is in the hundreds): a smaller
    # rate than the adaptive optimisers, which divide it out.
    lr = 1e-3 if optimizer in ("sgd", "momentum") else 1e-2
    path = optimizer_path(landscape, optimizer, lr, 200)
    assert not path.diverged
    assert path.losses[-1] < path.losses[0]
    assert len(path.points) == len(path.losses) == 201


def test_too_large_a_step_diverges_and_says_so() -> None:
    path = optimizer_path("narrow_valley", "sgd", 5.0, 1000)
    assert path.diverged
    assert all(math.isfinite(v) for v in path.losses)


def test_landscape_grid_is_the_function() -> None:
    xs, ys, z = landscape_grid("rosenbrock", points=5)
    assert z[0][0] == pytest.approx((1 - xs[0]) ** 2 + 100 * (ys[0] - xs[0] ** 2) ** 2)
    assert z[4][1] == pytest.approx((1 - xs[1]) ** 2 + 100 * (ys[4] - xs[1] ** 2) ** 2)


def test_lr_range_test_grows_the_rate_and_stops_when_the_loss_explodes() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 2, generator=gen)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    result = lr_range_test(model, x, y, lr_min=1e-3, lr_max=100.0, steps=200, batch_size=32)
    ratios = torch.tensor(result.lrs[1:]) / torch.tensor(result.lrs[:-1])
    torch.testing.assert_close(ratios, torch.full_like(ratios, (1e5) ** (1 / 199)))
    assert result.lrs[0] == pytest.approx(1e-3)
    lowest = result.losses.index(min(result.losses))
    assert result.lrs[0] <= result.suggestion < result.lrs[lowest]
    assert min(result.losses) < result.losses[0]

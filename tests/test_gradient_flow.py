"""Gradient flow in plain and residual networks, measured by autograd."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.gradient_flow import conv_gradient_norms, deep_spec, gradient_flow
from cnnlab.models import build_model


def _batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 16, 16, generator=gen), torch.randint(0, 4, (n,), generator=gen)


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_both_networks_have_depth_3x3_convs_of_one_width(residual: bool, batch_norm: bool) -> None:
    model = build_model(deep_spec(6, 5, residual, batch_norm), (1, 16, 16), 4)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 6
    assert [c.out_channels for c in convs] == [5] * 6
    assert convs[0].stride == (2, 2)
    assert all(c.stride == (1, 1) for c in convs[1:])
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert has_bn == batch_norm


@pytest.mark.parametrize(("depth", "width"), [(3, 8), (0, 8), (62, 8), (4, 0)])
def test_impossible_sizes_are_refused(depth: int, width: int) -> None:
    with pytest.raises(ValueError, match=r"Depth|Width"):
        deep_spec(depth, width, residual=True, batch_norm=False)


def test_gradient_norms_are_autograds() -> None:
    torch.manual_seed(1)
    model = build_model(deep_spec(4, 3, True, False), (1, 16, 16), 4)
    x, y = _batch()
    norms = conv_gradient_norms(model, x, y)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, [c.weight for c in convs])
    assert norms == pytest.approx([float(torch.linalg.vector_norm(g)) for g in grads], rel=1e-5)


def test_plain_gradients_vanish_and_skips_keep_them() -> None:
    # The lesson the page teaches, measured at a small size: without batch norm or skips, the
    # first layer of a 20-conv net gets a gradient thousands of times smaller than the last.
    x, y = _batch(32)
    plain = gradient_flow(deep_spec(20, 4, False, False), x, y, 4, steps=2)
    residual = gradient_flow(deep_spec(20, 4, True, False), x, y, 4, steps=2)
    assert plain.first_to_last < 1e-3
    assert residual.first_to_last > 1e-2
    assert len(plain.at_init) == len(plain.after) == 20
    assert len(plain.losses) == 2


def test_training_steps_lower_the_loss_and_are_seeded() -> None:
    x, y = _batch(32)
    spec = deep_spec(4, 8, True, True)
    a = gradient_flow(spec, x, y, 4, steps=15, seed=3)
    b = gradient_flow(spec, x, y, 4, steps=15, seed=3)
    assert a == b
    assert a.losses[-1] < a.losses[0]

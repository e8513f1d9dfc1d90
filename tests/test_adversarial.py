"""FGSM and PGD against PyTorch's own gradient: FGSM is exactly x + ε·sign(∇ₓ loss) and raises
the loss, PGD stays in its ε-ball and the valid pixel range, and the flip search finds the
smallest ε that changes the prediction."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnlab.adversarial import fgsm, pgd, smallest_flip
from cnnlab.bundled import load_bundled


def _model(seed: int):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 10 * 10, 5)
    )
    with torch.no_grad():  # running statistics that differ from a fresh layer's
        model[1].running_mean.uniform_(-0.3, 0.3)
        model[1].running_var.uniform_(0.5, 2)
    model.eval()
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(seed))
    return model, x


def _loss(model, x, target):
    with torch.no_grad():
        return float(F.cross_entropy(model(x), torch.tensor([target])))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), target=st.integers(0, 4), eps=st.floats(1e-4, 0.3))
def test_fgsm_is_x_plus_epsilon_times_the_sign_of_the_loss_gradient(seed, target, eps):
    model, x = _model(seed)
    leaf = x.clone().requires_grad_(True)
    F.cross_entropy(model(leaf), torch.tensor([target])).backward()
    expected = x + eps * leaf.grad.sign()
    torch.testing.assert_close(fgsm(model, x, target, eps), expected)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), target=st.integers(0, 4))
def test_a_small_fgsm_step_raises_the_loss(seed, target):
    model, x = _model(seed)
    assert _loss(model, fgsm(model, x, target, 1e-3), target) > _loss(model, x, target)


def test_fgsm_clamps_to_the_valid_range_per_channel():
    model, x = _model(1)
    low = torch.tensor([0.0, 0.1, 0.2]).view(1, 3, 1, 1)
    adv = fgsm(model, x, 2, 0.5, clamp=(low, 0.9))
    assert (adv >= low).all()
    assert (adv <= 0.9).all()


def test_pgd_stays_in_its_ball_raises_the_loss_and_repeats_with_its_seed():
    model, x = _model(2)
    adv = pgd(model, x, 3, epsilon=0.05, step=0.01, steps=10, seed=7, clamp=(0.0, 1.0))
    assert (adv - x).abs().max() <= 0.05 + 1e-6
    assert adv.min() >= 0
    assert adv.max() <= 1
    assert _loss(model, adv, 3) > _loss(model, x, 3)
    again = pgd(model, x, 3, epsilon=0.05, step=0.01, steps=10, seed=7, clamp=(0.0, 1.0))
    torch.testing.assert_close(adv, again)
    # Several projected steps reach at least the loss of one FGSM step of the same size.
    assert _loss(model, adv, 3) >= _loss(model, fgsm(model, x, 3, 0.05, clamp=(0.0, 1.0)), 3) - 1e-4


def test_batch_norm_stays_in_eval_mode_and_the_network_unchanged():
    model, x = _model(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fgsm(model, x, 0, 0.1)
    pgd(model, x, 0, 0.1, 0.02, 5)
    assert not model.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])
    model.train()
    with pytest.raises(ValueError, match="eval mode"):
        fgsm(model, x, 0, 0.1)


def test_bad_arguments_are_refused():
    model, x = _model(4)
    with pytest.raises(ValueError, match="ε"):
        fgsm(model, x, 0, -1.0)
    with pytest.raises(ValueError, match="steps"):
        pgd(model, x, 0, 0.1, 0.01, 0)
    with pytest.raises(ValueError, match="no class 9"):
        fgsm(model, x, 9, 0.1)


def test_the_flip_search_finds_the_smallest_flipping_epsilon_on_the_digits_model():
    info, model = load_bundled("digits")
    pixels = torch.zeros(1, 1, 28, 28)
    pixels[..., 6:22, 12:16] = 1  # a "1"
    x = (pixels - info.mean[0]) / info.std[0]
    low, high = (0 - info.mean[0]) / info.std[0], (1 - info.mean[0]) / info.std[0]
    with torch.no_grad():
        original = int(model(x).argmax())

    def attack(eps: float) -> torch.Tensor:
        return fgsm(model, x, original, eps, clamp=(low, high))

    found = smallest_flip(attack, model, original, max_epsilon=2.0, tolerance=1e-3)
    assert found.epsilon is not None
    assert found.new_class != original
    with torch.no_grad():
        assert int(model(attack(found.epsilon)).argmax()) == found.new_class
        # Just below it, on the scan's grid of non-flips, the prediction still holds.
        assert int(model(attack(found.epsilon - 1e-3)).argmax()) == original
    assert found.attacks < 30


def test_the_flip_search_says_when_nothing_flips():
    model, x = _model(5)
    with torch.no_grad():
        original = int(model(x).argmax())
    found = smallest_flip(lambda eps: x, model, original, max_epsilon=1.0, tolerance=0.01)
    assert found.epsilon is None
    assert found.attacks == 8

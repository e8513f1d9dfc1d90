"""Attribution methods checked by their known properties, with PyTorch as the oracle: integrated
gradients' completeness, a network that only sees one quadrant gets its saliency, Grad-CAM and
occlusion mass there, weight randomisation changes the maps (Adebayo et al. 2018), and every
method runs batch norm in eval mode and leaves the network untouched."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnlab.attribution import (
    completeness_gap,
    feature_maps,
    grad_cam,
    integrated_gradients,
    occlusion,
    saliency,
    smoothgrad,
)
from cnnlab.bundled import load_bundled
from cnnlab.models import PRESETS, build_model


class TopLeftOnly(nn.Module):
    """Zero everything but the top-left quadrant of the maps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        mask = torch.zeros_like(x)
        mask[..., : h // 2, : w // 2] = 1
        return x * mask


def _quadrant_model() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 1),  # 1×1: no pixel outside the quadrant reaches into it
        nn.BatchNorm2d(4),
        nn.ReLU(),
        TopLeftOnly(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    with torch.no_grad():  # positive evidence for class 0, so Grad-CAM's ReLU keeps it
        model[0].weight.abs_()
        model[0].bias.zero_()
        model[1].running_mean.fill_(-0.1)
        model[6].weight.abs_()
    return model.eval()


def _share_top_left(heat: torch.Tensor) -> float:
    h, w = heat.shape
    heat = heat.abs()
    return float(heat[: h // 2, : w // 2].sum() / heat.sum())


def _image(seed: int = 1, shape=(1, 1, 16, 16)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_a_network_that_sees_one_quadrant_gets_the_attribution_mass_there():
    model, x = _quadrant_model(), _image()
    assert _share_top_left(saliency(model, x, 0)) > 0.999
    assert _share_top_left(smoothgrad(model, x, 0, samples=8)) > 0.999
    assert _share_top_left(integrated_gradients(model, x, 0).sum(0)) > 0.999
    cam = grad_cam(model, x, 0, "3")
    assert cam.min() >= 0
    assert cam.sum() > 0
    # Bilinear upsampling of the 16×16 map to 16×16 is exact, so nothing leaks out.
    assert _share_top_left(cam) > 0.999
    # Windows aligned with the quadrant: the ones outside it change nothing.
    assert _share_top_left(occlusion(model, x, 0, window=4, stride=4)) > 0.999
    # Windows straddling its edge spread their drop over the pixels they cover, not further.
    heat = occlusion(model, x, 0, window=4, stride=2)
    assert heat[10:, :].abs().max() < 1e-6
    assert heat[:, 10:].abs().max() < 1e-6


def test_shapes_follow_the_api():
    model, x = _quadrant_model(), _image(shape=(1, 1, 12, 20))
    assert saliency(model, x, 1).shape == (12, 20)
    assert smoothgrad(model, x, 1, samples=3, noise=0.1, seed=4).shape == (12, 20)
    assert integrated_gradients(model, x, 1, steps=8).shape == (1, 12, 20)
    assert grad_cam(model, x, 1, model[0]).shape == (12, 20)
    assert occlusion(model, x, 1, window=(3, 5), stride=(2, 3)).shape == (12, 20)


def test_saliency_is_the_largest_absolute_gradient_over_channels():
    torch.manual_seed(2)
    model = build_model(PRESETS["tiny_vgg"], (3, 20, 20), 4).eval()
    x = torch.randn(1, 3, 20, 20, requires_grad=True)
    model(x)[0, 2].backward()
    torch.testing.assert_close(saliency(model, x.detach(), 2), x.grad[0].abs().amax(0))


def test_grad_cam_matches_the_formula_computed_by_hand():
    torch.manual_seed(3)
    model = build_model(PRESETS["tiny_vgg"], (1, 24, 24), 5).eval()
    x = torch.randn(1, 1, 24, 24)
    prefix, rest = model[:4], model[4:]
    activation = prefix(x).detach().requires_grad_(True)
    rest(activation)[0, 1].backward()
    weights = activation.grad.mean(dim=(2, 3), keepdim=True)
    expected = torch.relu((weights * activation).sum(1, keepdim=True)).detach()
    expected = nn.functional.interpolate(expected, size=(24, 24), mode="bilinear")[0, 0]
    torch.testing.assert_close(grad_cam(model, x, 1, "3"), expected)
    torch.testing.assert_close(grad_cam(model, x, 1, model[3]), expected)


def test_occlusion_matches_brute_force():
    torch.manual_seed(4)
    model = build_model(PRESETS["lenet5"], (1, 14, 14), 3).eval()
    x = torch.randn(1, 1, 14, 14)
    got = occlusion(model, x, 2, window=4, stride=3, fill=0.5)
    with torch.no_grad():
        reference = model(x)[0, 2]
        total, count = torch.zeros(14, 14), torch.zeros(14, 14)
        for r in (0, 3, 6, 9, 10):  # the last window sits flush with the edge
            for c in (0, 3, 6, 9, 10):
                covered = x.clone()
                covered[..., r : r + 4, c : c + 4] = 0.5
                total[r : r + 4, c : c + 4] += reference - model(covered)[0, 2]
                count[r : r + 4, c : c + 4] += 1
    torch.testing.assert_close(got, total / count)


class Smooth(nn.Module):
    """A smooth network (softplus, tanh, batch norm with non-trivial running statistics)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(
            nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.Softplus(), nn.Conv2d(6, 4, 3), nn.Tanh()
        )
        self.head = nn.Linear(4 * 8 * 8, 3)
        with torch.no_grad():
            self.body[1].running_mean.uniform_(-0.5, 0.5)
            self.body[1].running_var.uniform_(0.5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).flatten(1))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), target=st.integers(0, 2), zero_baseline=st.booleans())
def test_integrated_gradients_are_complete_on_smooth_networks(seed, target, zero_baseline):
    """Completeness: Σ attributions = f(x) − f(baseline) within 0.1 % (+1e-4) at 64 steps."""
    model = Smooth(seed).eval()
    x = torch.randn(1, 3, 12, 12, generator=torch.Generator().manual_seed(seed))
    baseline = None if zero_baseline else torch.full_like(x, 0.3)
    attributions = integrated_gradients(model, x, target, baseline=baseline)
    total, difference = completeness_gap(model, x, target, attributions, baseline)
    assert abs(total - difference) <= 1e-3 * abs(difference) + 1e-4


def test_integrated_gradients_are_complete_on_the_bundled_relu_network():
    """ReLU networks are only piecewise smooth: within 2 % at the default 64 steps."""
    _info, model = load_bundled("digits")
    x = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for target in (0, 3, 7):
        attributions = integrated_gradients(model, x, target)
        total, difference = completeness_gap(model, x, target, attributions)
        assert abs(total - difference) <= 0.02 * abs(difference) + 1e-3


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra = a.flatten().argsort().argsort().double()
    rb = b.flatten().argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def test_randomising_the_weights_changes_gradient_and_grad_cam_maps():
    """Adebayo et al.'s model-randomisation check on the bundled digits network: a method that
    explained the input rather than the model would barely change."""
    info, trained = load_bundled("digits")
    torch.manual_seed(0)
    random = build_model(info.spec, info.input_shape, len(info.classes)).eval()
    x = torch.zeros(1, 1, 28, 28)
    x[..., 6:22, 12:16] = 1  # a "1"
    x = (x - info.mean[0]) / info.std[0]
    conv = [n for n, m in trained.named_modules() if isinstance(m, nn.Conv2d)][-1]
    for method in (saliency, lambda m, x, t: grad_cam(m, x, t, conv)):
        a, b = method(trained, x, 1), method(random, x, 1)
        assert _spearman(a, b) < 0.6


def test_every_method_needs_eval_mode_and_leaves_the_network_unchanged():
    model = _quadrant_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = _image()
    saliency(model, x, 0)
    smoothgrad(model, x, 0, samples=4)
    integrated_gradients(model, x, 0, steps=4)
    grad_cam(model, x, 0, "2")
    occlusion(model, x, 0, 4, 4)
    feature_maps(model, x)
    assert not model.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])  # batch norm's running stats included
    model.train()
    with pytest.raises(ValueError, match="eval mode"):
        saliency(model, x, 0)


def test_bad_inputs_are_refused_with_a_sentence():
    model, x = _quadrant_model(), _image()
    with pytest.raises(ValueError, match="no class 7"):
        saliency(model, x, 7)
    with pytest.raises(ValueError, match=r"\(1, C, H, W\)"):
        saliency(model, x[0], 0)
    with pytest.raises(ValueError, match="larger than"):
        occlusion(model, x, 0, window=17, stride=1)
    with pytest.raises(ValueError, match="no layer named"):
        grad_cam(model, x, 0, "nope")
    with pytest.raises(ValueError, match="feature maps"):
        grad_cam(model, x, 0, "6")


def test_feature_maps_are_the_outputs_of_each_layer():
    torch.manual_seed(5)
    spec = PRESETS["small_resnet"]
    model = build_model(spec, (3, 16, 16), 4).eval()
    x = torch.randn(1, 3, 16, 16)
    maps = feature_maps(model, x)
    names = [name for name, _ in maps]
    # Image-shaped outputs only: the stem, three residual blocks, the global pool's C×1×1.
    assert names == ["0", "1", "2", "3", "4", "5", "6.0"]
    with torch.no_grad():
        for name, activation in maps:
            index = int(name.split(".")[0])
            expected = model[: index + 1](x) if "." not in name else model[6][0](model[:6](x))
            torch.testing.assert_close(activation, expected[0])

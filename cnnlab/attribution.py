"""Why did the network decide? Attribution maps for one image and one class.

Every function takes a network in ``eval()`` mode (batch norm uses its running statistics, so a
batch of perturbed copies is scored exactly like the image alone), a float input ``x`` of shape
(1, C, H, W) as the network receives it, and ``target``, a class index. They differentiate the
class *score* (the logit before softmax, as in the papers), never change the network, and return
float tensors on the CPU:

- :func:`saliency` (Simonyan et al. 2014): |∂score/∂x|, the largest over channels → (H, W).
- :func:`smoothgrad` (Smilkov et al. 2017): saliency averaged over noisy copies → (H, W).
- :func:`integrated_gradients` (Sundararajan et al. 2017): (x − baseline) × the average gradient
  along the straight path from the baseline → (C, H, W); they add up to score(x) − score(baseline).
- :func:`grad_cam` (Selvaraju et al. 2017): a layer's maps weighted by their average gradient,
  ReLU, upsampled to the input → (H, W), non-negative.
- :func:`occlusion` (Zeiler & Fergus 2014): how much the score drops when a window is covered.
- :func:`feature_maps`: every layer's output, for the feature-map explorer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Work on at most this many copies of the image at once: bounded memory for any image size.
CHUNK = 16
MAX_OCCLUSION_WINDOWS = 4096


def check_inputs(model: nn.Module, x: torch.Tensor, target: int | None = None) -> None:
    """Raise ``ValueError`` unless ``model`` is in eval mode and ``x`` is one float image."""
    if any(m.training for m in model.modules()):
        raise ValueError(
            "The network must be in eval mode (model.eval()): in training mode batch norm and "
            "dropout would treat each perturbed copy differently."
        )
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[0] != 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"Expected one image as a (1, C, H, W) tensor, got {shape}.")
    if not x.is_floating_point():
        raise ValueError(f"The image tensor must hold floats, got {x.dtype}.")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
        raise ValueError(f"The target class must be a whole number, got {target!r}.")


def _check_target(scores: torch.Tensor, target: int) -> None:
    if not 0 <= target < scores.shape[1]:
        raise ValueError(f"There is no class {target}; this network has {scores.shape[1]}.")


def _chunks(n: int) -> Iterator[slice]:
    for start in range(0, n, CHUNK):
        yield slice(start, min(n, start + CHUNK))


def class_scores(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The network's output for ``x`` (B, C, H, W) as (B, classes) scores; refuses other shapes."""
    out = model(x)
    if out.ndim != 2:
        raise ValueError(
            f"This network outputs shape {tuple(out.shape)}, not one score per class, so there "
            f"is no class to explain."
        )
    return out


def _score_gradients(model: nn.Module, xs: torch.Tensor, target: int) -> torch.Tensor:
    """∂score_target/∂x for each image of the batch ``xs`` (B, C, H, W), in chunks."""
    grads = []
    for part in _chunks(len(xs)):
        batch = xs[part].detach().requires_grad_(True)
        with torch.enable_grad():  # also when the caller is inside torch.no_grad()
            scores = class_scores(model, batch)
            _check_target(scores, target)
            (grad,) = torch.autograd.grad(scores[:, target].sum(), batch)
        grads.append(grad)
    return torch.cat(grads)  # (B, C, H, W)


def saliency(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """Vanilla gradient saliency: |∂score/∂x| maximised over channels, shape (H, W)."""
    check_inputs(model, x, target)
    return _score_gradients(model, x, target)[0].abs().amax(dim=0)


def smoothgrad(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    samples: int = 32,
    noise: float = 0.15,
    seed: int = 0,
) -> torch.Tensor:
    """SmoothGrad: saliency averaged over ``samples`` copies of ``x`` with Gaussian noise.

    ``noise`` is the noise's standard deviation as a share of the input's value range
    (max − min), the paper's convention; 10–20 % is its recommendation.
    """
    check_inputs(model, x, target)
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 256:
        raise ValueError(f"SmoothGrad needs 1–256 noisy samples, got {samples!r}.")
    if not 0 <= noise <= 1:
        raise ValueError(f"The noise level must be between 0 and 1, got {noise}.")
    sigma = noise * float(x.max() - x.min())
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros(x.shape[2:])
    for part in _chunks(samples):
        n = part.stop - part.start
        eps = torch.randn((n, *x.shape[1:]), generator=generator) * sigma
        noisy = x.detach().cpu() + eps
        total += _score_gradients(model, noisy.to(x.device), target).abs().amax(dim=1).sum(0).cpu()
    return total / samples


def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    baseline: torch.Tensor | None = None,
    steps: int = 64,
) -> torch.Tensor:
    """Integrated gradients from ``baseline`` (None: all zeros) to ``x``, shape (C, H, W).

    The path integral is taken with Gauss–Legendre quadrature on ``steps`` points (as Captum
    does by default), which converges much faster than a Riemann sum. Completeness: the
    attributions sum to score(x) − score(baseline); the gap left by a finite ``steps`` is
    :func:`completeness_gap`.
    """
    check_inputs(model, x, target)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= 1024:
        raise ValueError(f"Integrated gradients needs 2–1024 steps, got {steps!r}.")
    base = torch.zeros_like(x) if baseline is None else baseline.to(x)
    if base.shape != x.shape:
        raise ValueError(f"The baseline has shape {tuple(base.shape)}, the image {tuple(x.shape)}.")
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.tensor((nodes + 1) / 2, dtype=x.dtype, device=x.device)  # points in (0, 1)
    w = torch.tensor(weights / 2, dtype=x.dtype, device=x.device)  # they sum to 1
    delta = (x - base).detach()
    total = torch.zeros_like(x[0])
    for part in _chunks(steps):
        path = base + alphas[part].view(-1, 1, 1, 1) * delta  # (n, C, H, W)
        grads = _score_gradients(model, path, target)
        total += (grads * w[part].view(-1, 1, 1, 1)).sum(0)
    return (delta[0] * total).cpu()


def completeness_gap(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    attributions: torch.Tensor,
    baseline: torch.Tensor | None = None,
) -> tuple[float, float]:
    """(sum of attributions, score(x) − score(baseline)): equal when the integral is exact."""
    base = torch.zeros_like(x) if baseline is None else baseline.to(x)
    with torch.no_grad():
        scores = class_scores(model, torch.cat([x, base]))
    _check_target(scores, target)
    return float(attributions.sum()), float(scores[0, target] - scores[1, target])


def resolve_layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    """``layer`` itself if it is part of ``model``, or the module of that name."""
    modules = dict(model.named_modules())
    if isinstance(layer, str):
        if layer not in modules:
            raise ValueError(f"The network has no layer named {layer!r}.")
        return modules[layer]
    if not any(m is layer for m in modules.values()):
        raise ValueError("That layer is not part of this network.")
    return layer


def grad_cam(
    model: nn.Module, x: torch.Tensor, target: int, layer: nn.Module | str
) -> torch.Tensor:
    """Grad-CAM at ``layer``: ReLU(Σₖ mean(∂score/∂Aₖ)·Aₖ), bilinearly upsampled to (H, W)."""
    check_inputs(model, x, target)
    module = resolve_layer(model, layer)
    captured: list[torch.Tensor] = []
    caller = threading.get_ident()

    def keep(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        # The model may be shared by other students' threads: keep only our own forward pass.
        if threading.get_ident() == caller:
            captured.append(output)

    handle = module.register_forward_hook(keep)
    try:
        with torch.enable_grad():  # the weights need grad even for an input that has none
            scores = class_scores(model, x.detach())
    finally:
        handle.remove()
    _check_target(scores, target)
    if not captured or not isinstance(captured[-1], torch.Tensor) or captured[-1].ndim != 4:
        raise ValueError(
            "Grad-CAM needs a layer whose output is a stack of feature maps (C × H × W); pick a "
            "convolution, activation or pooling layer before the network flattens."
        )
    activation = captured[-1]  # (1, K, h, w)
    if not activation.requires_grad:
        raise ValueError("The class score does not depend on this layer; pick another one.")
    (grad,) = torch.autograd.grad(scores[0, target], activation)
    weights = grad.mean(dim=(2, 3), keepdim=True)  # (1, K, 1, 1): the channel's importance
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)
    return cam[0, 0].clamp_min(0).cpu()


def _positions(size: int, window: int, stride: int) -> list[int]:
    """Window starts that cover 0 … size − 1, the last one flush with the edge."""
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in pair):
        raise ValueError(f"The {name} must be a whole number ≥ 1 (or a pair), got {value!r}.")
    return pair  # type: ignore[return-value]


def occlusion(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    window: int | tuple[int, int],
    stride: int | tuple[int, int],
    fill: float = 0.0,
) -> torch.Tensor:
    """Occlusion sensitivity: score(x) − score(x with a window filled), averaged per pixel.

    Every pixel gets the mean drop over the windows that covered it (Captum's convention), so a
    positive value means hiding that region lowers the class score. Shape (H, W).
    """
    check_inputs(model, x, target)
    (wh, ww), (sh, sw) = _pair(window, "window"), _pair(stride, "stride")
    _, _, h, w = x.shape
    if wh > h or ww > w:
        raise ValueError(f"The {wh}×{ww} window is larger than the {h}×{w} image.")
    rows, cols = _positions(h, wh, sh), _positions(w, ww, sw)
    if len(rows) * len(cols) > MAX_OCCLUSION_WINDOWS:
        raise ValueError(
            f"That is {len(rows) * len(cols):,} windows; use a larger stride or window "
            f"(at most {MAX_OCCLUSION_WINDOWS:,})."
        )
    boxes = [(r, c) for r in rows for c in cols]
    with torch.no_grad():
        reference = class_scores(model, x)
        _check_target(reference, target)
        drops = []
        for part in _chunks(len(boxes)):
            batch = x.repeat(part.stop - part.start, 1, 1, 1)
            for i, (r, c) in enumerate(boxes[part]):
                batch[i, :, r : r + wh, c : c + ww] = fill
            drops.append(reference[0, target] - class_scores(model, batch)[:, target])
        drop = torch.cat(drops).cpu()
    total = torch.zeros(h, w)
    count = torch.zeros(h, w)
    for (r, c), d in zip(boxes, drop, strict=True):
        total[r : r + wh, c : c + ww] += d
        count[r : r + wh, c : c + ww] += 1
    return total / count


def feature_units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers :func:`feature_maps` reports: containers (``nn.Sequential``) are opened,
    anything else (a conv, an activation, a residual block) counts as one layer."""
    units: list[tuple[str, nn.Module]] = []

    def visit(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if isinstance(child, nn.Sequential):
                visit(f"{full}.", child)
            else:
                units.append((full, child))

    visit("", model)
    return units


def feature_maps(model: nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Every layer's output that is still an image (K, h, w), in the order the network runs.

    Layers are those of :func:`feature_units`; a layer called twice reports its last call.
    The tensors are detached, on the CPU, without the batch dimension.
    """
    check_inputs(model, x)
    outputs: dict[str, torch.Tensor] = {}
    order: list[str] = []
    handles = []
    caller = threading.get_ident()

    def hook(name: str):
        def keep(_module: nn.Module, _inputs: object, output: object) -> None:
            # The model may be shared by other students' threads: keep only our forward pass.
            if threading.get_ident() != caller:
                return
            if isinstance(output, torch.Tensor) and output.ndim == 4:
                if name not in outputs:
                    order.append(name)
                # A copy: an in-place activation after this layer would overwrite a view.
                outputs[name] = output[0].detach().cpu().clone()

        return keep

    for name, module in feature_units(model):
        handles.append(module.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return [(name, outputs[name]) for name in order]

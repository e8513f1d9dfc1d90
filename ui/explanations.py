"""The explorer's "why" sections: attribution maps over the image, and adversarial examples.

Each result is computed once per (network, image digest, settings) and shared between sessions
(``st.cache_resource``, bounded); the opacity slider only blends, it never recomputes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch
from PIL import Image, ImageFilter

from cnnlab import adversarial, attribution
from cnnlab.explorer import Explorable, colour_map, overlay, png_bytes, softmax
from cnnlab.viz import ColourScale
from ui import picture, url_state

HEAVY_PARAMS = 1_000_000  # above this, the smallest-ε search waits for a click (ResNet-18: 11.7 M)
METHODS = ("Grad-CAM", "Saliency", "SmoothGrad", "Integrated gradients", "Occlusion")
BASELINES = ("black image", "blurred image", "average pixel (all zeros after normalising)")
NOTES = {
    "Grad-CAM": (
        "**Can tell** where, at the chosen layer's resolution, the evidence *for* this class "
        "sits: each map of the layer weighted by how much the class score rises with it. "
        "**Cannot tell** fine detail (a deep layer is coarse, the map is upsampled), or "
        "evidence *against* the class (the ReLU drops it); an early layer gives noisy maps."
    ),
    "Saliency": (
        "**Can tell** which pixels, nudged a little, change the class score most: the "
        "gradient ∂score/∂pixel. **Cannot tell** how much a pixel contributed: it is a local "
        "sensitivity, often noisy, and zero where the network is saturated."
    ),
    "SmoothGrad": (
        "**Can tell** the same as saliency with less noise: the gradient averaged over copies "
        "of the image with random noise added. **Cannot tell** more than saliency does; the "
        "noise level is a choice that changes the picture."
    ),
    "Integrated gradients": (
        "**Can tell** how much each pixel contributed to the score *compared with a baseline "
        "image*: the attributions add up exactly to score(image) − score(baseline). "
        "**Cannot tell** anything the baseline hides: with a black baseline, black pixels "
        "always get 0."
    ),
    "Occlusion": (
        "**Can tell** what really happens when a region is hidden: the drop of the class score "
        "when a grey window covers it, no gradients involved. **Cannot tell** detail finer "
        "than the window; a covered image is unlike any training image; many forward passes."
    ),
}


@dataclass(frozen=True)
class ExplainSettings:
    """A method and its parameters, hashable so it can key the cache."""

    method: str
    target: int
    layer: str = ""
    samples: int = 0
    noise: float = 0.0
    baseline: str = ""
    window: int = 0
    stride: int = 0


def _baseline(kind: str, target: Explorable, pixels: Image.Image, x: torch.Tensor) -> torch.Tensor:
    """The integrated-gradients baseline as a normalised tensor like ``x``."""
    if kind.startswith("average"):
        return torch.zeros_like(x)
    if kind.startswith("black"):
        low, _ = target.pixel_bounds()
        return low.expand_as(x).clone()
    blurred = pixels.filter(ImageFilter.GaussianBlur(radius=max(2, pixels.width // 16)))
    array = np.asarray(blurred, dtype=np.float32) / 255
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    mean = torch.tensor(target.mean).view(-1, 1, 1)
    std = torch.tensor(target.std).view(-1, 1, 1)
    return ((torch.from_numpy(np.ascontiguousarray(array)) - mean) / std)[None]


@st.cache_resource(show_spinner=False, max_entries=64)
def explain(
    model_key: str,
    digest: str,
    settings: ExplainSettings,
    _target: Explorable,
    _pixels: Image.Image,
    _x: torch.Tensor,
) -> torch.Tensor:
    """The (H, W) map of ``settings`` for the analysed image (signed for integrated gradients)."""
    model, x, cls = _target.model, _x, settings.target
    if settings.method == "Grad-CAM":
        return attribution.grad_cam(model, x, cls, settings.layer)
    if settings.method == "Saliency":
        return attribution.saliency(model, x, cls)
    if settings.method == "SmoothGrad":
        return attribution.smoothgrad(model, x, cls, settings.samples, settings.noise, seed=0)
    if settings.method == "Integrated gradients":
        base = _baseline(settings.baseline, _target, _pixels, x)
        return attribution.integrated_gradients(model, x, cls, base).sum(0)
    fill = 0.0  # the normalised mean: an "average grey" window
    return attribution.occlusion(model, x, cls, settings.window, settings.stride, fill)


def explain_controls(target: Explorable, predicted: int, grids: dict[int, str]) -> ExplainSettings:
    """Method, class and the method's own parameters; returns plain settings. ``grids`` names
    the layers Grad-CAM can use by their position in the network (as the link counts them)."""
    left, right = st.columns(2)
    method = left.radio("Method", METHODS, key="explorer.method", horizontal=True)
    classes = target.classes
    # A class, layer or window a link sent that this network lacks: the page's own choice.
    url_state.fit("explorer.class", range(len(classes)), predicted, f"for {len(classes)} classes")
    cls = right.selectbox(
        "Explain the class",
        range(len(classes)),
        index=predicted,
        format_func=lambda i: f"{classes[i]}{' (predicted)' if i == predicted else ''}",
        key="explorer.class",
    )
    h, w = _input_size(target)
    if method == "Grad-CAM":
        layers = list(grids)
        if layers:
            url_state.fit("explorer.cam_layer", layers, layers[-1], "(the layers with a grid)")
        layer = st.selectbox(
            "Layer", layers, index=len(layers) - 1, format_func=grids.get,
            key="explorer.cam_layer",
            help="The last convolutional layers are usual: deep enough to mean something, "
            "still a grid of positions.",
        )  # fmt: skip
        return ExplainSettings(method, cls, layer=grids.get(layer, ""))
    if method == "SmoothGrad":
        a, b = st.columns(2)
        samples = a.slider("Noisy copies", 4, 64, 16, key="explorer.sg_samples")
        noise = b.slider("Noise (share of the value range)", 0.05, 0.5, 0.15, 0.05,
                         key="explorer.sg_noise")  # fmt: skip
        return ExplainSettings(method, cls, samples=samples, noise=noise)
    if method == "Integrated gradients":
        baseline = st.radio("Baseline", BASELINES, key="explorer.ig_baseline", horizontal=True)
        return ExplainSettings(method, cls, baseline=baseline)
    if method == "Occlusion":
        a, b = st.columns(2)
        side = min(h, w)
        # Defaults: 8 × 8 windows at most (one pass of the network each).
        most, default = max(3, side // 2), max(2, side // 4)
        where = f"for a {h}×{w} input"
        url_state.fit("explorer.occ_window", range(2, most + 1), default, where)
        window = a.slider("Window (pixels)", 2, most, default, key="explorer.occ_window")
        most, default = max(2, side // 4), max(1, side // 8)
        url_state.fit("explorer.occ_stride", range(1, most + 1), default, where)
        stride = b.slider("Stride (pixels)", 1, most, default, key="explorer.occ_stride")
        return ExplainSettings(method, cls, window=window, stride=stride)
    return ExplainSettings(method, cls)


def _input_size(target: Explorable) -> tuple[int, int]:
    if target.resize == "digits":
        return 28, 28
    if target.resize == "imagenet":
        return 224, 224
    return target.size, target.size


# The blended picture too, per (map, opacity): a rerun that moves nothing draws nothing again.
@st.cache_resource(show_spinner=False, max_entries=64)
def overlay_png(
    model_key: str,
    digest: str,
    settings: ExplainSettings,
    opacity: float,
    _target: Explorable,
    _pixels: Image.Image,
    _x: torch.Tensor,
) -> bytes:
    """The map of ``settings`` over the image at ``opacity``, 320 pixels wide, as a PNG."""
    heat = explain(model_key, digest, settings, _target, _pixels, _x)
    blended = overlay(_pixels, heat, opacity)
    side = 320
    shown = Image.fromarray(blended).resize(
        (side, round(side * blended.shape[0] / blended.shape[1])), Image.Resampling.NEAREST
    )
    return png_bytes(np.asarray(shown))


def show_explanation(
    target: Explorable, digest: str, settings: ExplainSettings, pixels: Image.Image, x
) -> None:
    """The map over the image with an opacity slider, the method's limits, and a PNG export."""
    with st.spinner(f"Computing {settings.method}…"):
        heat = explain(target.key, digest, settings, target, pixels, x)
    opacity = st.slider("Opacity of the map", 0.0, 1.0, 0.6, 0.05, key="explorer.opacity")
    data = overlay_png(target.key, digest, settings, opacity, target, pixels, x)
    left, right = st.columns([1, 1])
    with left:
        magnitude = "|attribution|" if float(heat.min()) < 0 else "value"
        caption = (
            f"{settings.method} for “{target.classes[settings.target]}”: viridis from 0 "
            f"(dark) to the largest {magnitude} {float(heat.abs().max()):.3g} (yellow)."
        )
        picture.image(data, caption=caption, alt=caption)
        st.download_button(
            "Download as PNG",
            data,
            file_name=f"{settings.method.lower().replace(' ', '-')}.png",
            mime="image/png",
            key="explorer.explain_png",
            on_click="ignore",
        )
    with right:
        st.markdown(NOTES[settings.method])
        if settings.method == "Integrated gradients":
            base = _baseline(settings.baseline, target, pixels, x)
            caption = f"The baseline: {settings.baseline}"
            st.image(_denormalised(base, target), caption=caption, width=160, alt=caption)
            total, difference = attribution.completeness_gap(
                target.model, x, settings.target, heat.view(1, *heat.shape), base
            )
            st.caption(
                f"Completeness: the attributions add up to {total:.4f}; score(image) − "
                f"score(baseline) = {difference:.4f}."
            )


def _denormalised(x: torch.Tensor, target: Explorable) -> np.ndarray:
    """A normalised (1, C, H, W) tensor back to uint8 pixels (H, W) or (H, W, 3)."""
    mean = torch.tensor(target.mean).view(-1, 1, 1)
    std = torch.tensor(target.std).view(-1, 1, 1)
    pixels = ((x[0] * std + mean).clamp(0, 1) * 255).round().byte().numpy()
    return pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)


@dataclass(frozen=True)
class Attack:
    """The outcome of one attack: the perturbed input, the prediction before and after."""

    perturbed: torch.Tensor
    before: tuple[int, float]
    after: tuple[int, float]


def _attacker(method: str, target: Explorable, x: torch.Tensor, original: int):
    """The attack as a function of ε in grey levels (PGD: 10 steps of ε/4, seeded)."""
    bounds = target.pixel_bounds()

    def run(eps_pixels: float) -> torch.Tensor:
        eps = target.pixel_epsilon(eps_pixels)
        if method == "FGSM":
            return adversarial.fgsm(target.model, x, original, eps, clamp=bounds)
        return adversarial.pgd(target.model, x, original, eps, eps / 4, 10, seed=0, clamp=bounds)

    return run


def _predicted(target: Explorable, x: torch.Tensor) -> tuple[int, float]:
    with torch.no_grad():
        probs = softmax(target.model(x)[0])
    return int(probs.argmax()), float(probs.max())


@st.cache_resource(show_spinner=False, max_entries=64)
def attack(
    model_key: str, digest: str, method: str, epsilon: float, _target: Explorable, _x: torch.Tensor
) -> Attack:
    """Run FGSM or PGD at ``epsilon`` grey levels against the predicted class."""
    before = _predicted(_target, _x)
    perturbed = _attacker(method, _target, _x, before[0])(epsilon)
    return Attack(perturbed, before, _predicted(_target, perturbed))


# The pictures too, per attack: a rerun that moves nothing draws nothing again.
@st.cache_resource(show_spinner=False, max_entries=64)
def attack_pictures(
    model_key: str, digest: str, method: str, epsilon: float, _target: Explorable, _x: torch.Tensor
) -> tuple[Attack, tuple[bytes, bytes, bytes], float]:
    """The attack, its before / amplified perturbation / after pictures (PNG) and the
    perturbation's largest change in grey levels (at least 1, the colour scale's end)."""
    result = attack(model_key, digest, method, epsilon, _target, _x)
    before = _denormalised(_x, _target)
    after = _denormalised(result.perturbed, _target)
    delta = after.astype(np.float64) - before.astype(np.float64)
    limit = max(float(np.abs(delta).max()), 1.0)
    amplified = colour_map(torch.from_numpy(delta if delta.ndim == 2 else delta.mean(2)),
                           ColourScale(-limit, limit, True))  # fmt: skip
    return result, (_big(before), _big(amplified), _big(after)), limit


@st.cache_resource(show_spinner=False, max_entries=32)
def smallest_flip(
    model_key: str, digest: str, method: str, _target: Explorable, _x: torch.Tensor
) -> adversarial.FlipSearch:
    """The smallest ε (grey levels, to 0.25, up to 64) at which the attack flips the prediction.

    Cached apart from :func:`attack`: it does not depend on the slider, so moving ε never
    repeats the search."""
    original = _predicted(_target, _x)[0]
    run = _attacker(method, _target, _x, original)
    return adversarial.smallest_flip(run, _target.model, original, max_epsilon=64, tolerance=0.25)


def show_attack(target: Explorable, digest: str, x: torch.Tensor) -> None:
    """FGSM / PGD with an ε slider in grey levels: perturbation, result, before and after."""
    left, right = st.columns(2)
    method = left.radio("Attack", ("FGSM", "PGD"), key="explorer.attack", horizontal=True)
    epsilon = right.slider(
        "ε (grey levels of 255)",
        0.0,
        32.0,
        4.0,
        0.5,
        key="explorer.epsilon",
        help="Every pixel may change by at most ε out of 255 (an L∞ ball).",
    )
    with st.spinner(f"Attacking with {method}…"):
        result, pictures, limit = attack_pictures(target.key, digest, method, epsilon, target, x)
    classes = target.classes
    cols = st.columns(3)
    captions = (
        f"Before: **{classes[result.before[0]]}** ({result.before[1]:.1%})",
        f"Perturbation, amplified: ±{limit:.1f} grey levels at the ends of the scale",
        f"After {method}, ε = {epsilon:g}: **{classes[result.after[0]]}** ({result.after[1]:.1%})",
    )
    names = ("before", "perturbation", "after")
    for col, data, caption, name in zip(cols, pictures, captions, names, strict=True):
        with col:
            picture.image(data, width=200, alt=caption.replace("**", ""))
            st.markdown(caption)
            st.download_button(
                "Download as PNG",
                data,
                file_name=f"{method.lower()}-{name}.png",
                mime="image/png",
                key=f"explorer.attack_png.{name}",
                on_click="ignore",
            )
    _show_flip(target, digest, method, x, classes[result.before[0]])
    st.caption(
        "Both attacks push the image to *raise the loss* of the predicted class: FGSM takes "
        "one step of ε·sign(gradient); PGD takes 10 steps of ε/4 from a random start, each "
        "kept within ε of the image. Pixels stay within 0…255."
    )


def _show_flip(target: Explorable, digest: str, method: str, x: torch.Tensor, label: str) -> None:
    """The smallest flipping ε: searched at once for small networks, on request for big ones."""
    asked = f"explorer.flip.{target.key}.{digest}.{method}"
    heavy = sum(p.numel() for p in target.model.parameters()) > HEAVY_PARAMS
    if heavy and not st.session_state.get(asked):
        passes = "about 12" if method == "FGSM" else "about 120"
        if not st.button(
            f"Search the smallest ε that flips the prediction ({passes} passes through this "
            f"network, seconds to a minute)",
            key="explorer.flip_search",
        ):
            return
        st.session_state[asked] = True
    with st.spinner("Searching the smallest ε…"):
        found = smallest_flip(target.key, digest, method, target, x)
    if found.epsilon is None:
        st.info(f"No ε up to 64 grey levels changes the prediction with {method}.")
    else:
        st.success(
            f"Smallest ε that flips the prediction with {method}: **{found.epsilon:.2f}** "
            f"grey levels of 255 (found by a doubling scan then bisection to 0.25, "
            f"{found.attacks} attacks): {label} → {target.classes[found.new_class]}."
        )


def _big(pixels: np.ndarray) -> bytes:
    image = Image.fromarray(pixels)
    scale = max(1, 200 // max(image.size))
    return png_bytes(
        np.asarray(image.resize((image.width * scale, image.height * scale), Image.NEAREST))
    )

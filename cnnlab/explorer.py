"""The feature-map explorer's engine: a network to explore, how an image becomes its input
(every step kept so the page can show it), and each layer's maps as one tiled picture.

An :class:`Explorable` wraps any network the page offers (bundled, the classic-vision bank, a
learner's run, an ImageNet CNN) with what it needs to read an image. :func:`preprocess` returns
the exact tensor the network receives; :func:`layer_views` turns :func:`feature_maps` into
tiles, statistics, top channels and the kernels that produced each channel.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn

from cnnlab import images
from cnnlab.attribution import feature_maps, feature_units
from cnnlab.viz import DIVERGING_STOPS, SEQUENTIAL_STOPS, ColourScale, _apply_stops

MAX_PARAMS = 30_000_000  # a bigger network would make every explanation too slow to wait for
MAX_CHANNELS = 4  # an input is gray (1) or colour (3); anything else is refused
MIN_SIDE = 8
TILE_TARGET = 64  # pixels a tile is enlarged (or shrunk) towards, so small maps stay legible
MAX_TILE = 128


@dataclass(frozen=True, eq=False)
class Explorable:
    """A network in ``eval()`` mode and how images are prepared for it.

    ``resize`` is ``"digits"`` (MNIST-style: crop the ink, fit it in 20×20, centre it by mass in
    28×28), ``"square"`` (centre-crop to a square, resize to ``size``), ``"fit"`` (scale the
    longer side down to ``size``, any aspect) or ``"imagenet"`` (shorter side to 256, centre
    224×224 crop). ``classes`` is empty for a network without a classifier.
    """

    key: str
    title: str
    model: nn.Module
    channels: int
    size: int
    resize: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...] = ()
    note: str = ""
    recipe: str = ""  # the command line that made the network, when there is one
    channel_labels: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        params = sum(p.numel() for p in self.model.parameters())
        if params > MAX_PARAMS:
            raise ValueError(
                f"This network has {params:,} parameters; the explorer takes at most "
                f"{MAX_PARAMS:,} so that every explanation stays quick."
            )
        if self.channels not in (1, 3):
            raise ValueError(f"The explorer reads gray or colour images, not {self.channels}.")
        if self.resize not in ("digits", "square", "fit", "imagenet"):
            raise ValueError(f"Unknown resizing {self.resize!r}.")

    @property
    def has_classifier(self) -> bool:
        """Whether the network ends in class scores (explanations and attacks need them)."""
        return bool(self.classes)

    def pixel_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised values of pixel 0 and pixel 255, per channel, shaped (1, C, 1, 1)."""
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return (0 - mean) / std, (1 - mean) / std

    def pixel_epsilon(self, pixels: float) -> torch.Tensor:
        """ε of ``pixels`` grey levels (of 255) in the normalised units, per channel."""
        return (pixels / 255) / torch.tensor(self.std).view(1, -1, 1, 1)


@dataclass(frozen=True)
class Preprocessed:
    """An image on its way into the network: the steps (caption, picture) and the final tensor."""

    steps: tuple[tuple[str, Image.Image], ...]
    pixels: Image.Image  # what the network sees, before normalisation
    x: torch.Tensor  # (1, C, H, W) float32, normalised

    @property
    def shape(self) -> tuple[int, ...]:
        """(1, C, H, W)."""
        return tuple(self.x.shape)


def _digits(gray: Image.Image) -> list[tuple[str, Image.Image]]:
    """MNIST's own recipe: ink white on black, cropped, fitted in 20×20, centred by mass."""
    steps = []
    pixels = np.asarray(gray, dtype=np.float32)
    if pixels.mean() > 127:  # dark ink on light paper: MNIST digits are light on dark
        pixels = 255 - pixels
        steps.append(("inverted (MNIST digits are light on dark)", _gray(pixels)))
    ink = pixels > 0.25 * pixels.max() if pixels.max() > 0 else np.zeros_like(pixels, bool)
    if not ink.any():
        blank = Image.new("L", (28, 28))
        return [*steps, ("nothing drawn: a blank 28×28 input", blank)]
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    crop = pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    steps.append((f"cropped to the ink ({crop.shape[1]}×{crop.shape[0]})", _gray(crop)))
    scale = 20 / max(crop.shape)
    w, h = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
    fitted = np.asarray(_gray(crop).resize((w, h), Image.Resampling.LANCZOS), dtype=np.float32)
    steps.append((f"fitted in a 20×20 box ({w}×{h})", _gray(fitted)))
    total = fitted.sum()
    cy = (fitted.sum(1) * np.arange(h)).sum() / total if total else h / 2
    cx = (fitted.sum(0) * np.arange(w)).sum() / total if total else w / 2
    top = int(np.clip(round(14 - cy), 0, 28 - h))
    left = int(np.clip(round(14 - cx), 0, 28 - w))
    canvas = np.zeros((28, 28), np.float32)
    canvas[top : top + h, left : left + w] = fitted
    steps.append(("centred by its centre of mass in 28×28", _gray(canvas)))
    return steps


def _gray(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), "L")


def _centre_square(image: Image.Image) -> Image.Image:
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side))


def preprocess(image: Image.Image, target: Explorable) -> Preprocessed:
    """Turn ``image`` into the tensor ``target`` receives, keeping every intermediate step."""
    mode = "L" if target.channels == 1 else "RGB"
    converted = image.convert(mode)
    steps: list[tuple[str, Image.Image]] = [(f"your image ({image.width}×{image.height})", image)]
    if mode != image.mode:
        steps.append(("grayscale" if mode == "L" else "as RGB", converted))
    if min(image.size) < MIN_SIDE:
        # A network's first layers need a few pixels each way: enlarge tiny images and strips
        # (each pixel becomes a block) rather than refuse them.
        converted = images.working_image(converted, max(image.size), MIN_SIDE)
        size = f"{converted.width}×{converted.height}"
        steps.append((f"enlarged to {size}, at least {MIN_SIDE} pixels each way", converted))
    if target.resize == "digits":
        steps += _digits(converted)
        final = steps[-1][1]
    elif target.resize == "square":
        square = _centre_square(converted)
        if square.size != converted.size:
            steps.append((f"centre-cropped to {square.width}×{square.height}", square))
        final = square.resize((target.size, target.size), Image.Resampling.BOX)
        steps.append((f"resized to {target.size}×{target.size}", final))
    elif target.resize == "imagenet":
        scale = 256 / min(converted.size)
        w, h = round(converted.width * scale), round(converted.height * scale)
        resized = converted.resize((w, h), Image.Resampling.BILINEAR)
        steps.append((f"shorter side to 256 ({w}×{h})", resized))
        left, top = (w - 224) // 2, (h - 224) // 2
        final = resized.crop((left, top, left + 224, top + 224))
        steps.append(("centre 224×224 crop", final))
    else:
        scale = min(1.0, target.size / max(converted.size))
        final = converted
        if scale < 1:
            w, h = max(1, round(converted.width * scale)), max(1, round(converted.height * scale))
            final = converted.resize((w, h), Image.Resampling.BOX)
            steps.append((f"scaled down to {w}×{h}", final))
    array = np.asarray(final, dtype=np.float32) / 255
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, H, W)
    mean = torch.tensor(target.mean).view(-1, 1, 1)
    std = torch.tensor(target.std).view(-1, 1, 1)
    x = ((torch.from_numpy(np.ascontiguousarray(array)) - mean) / std)[None]
    return Preprocessed(tuple(steps), final, x.float())


# --- layers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerView:
    """One layer's maps for one image, ready to show."""

    name: str
    kind: str
    maps: torch.Tensor  # (K, h, w)
    mean: float
    zero_share: float  # share of exactly-zero values (after a ReLU: the neurons that are off)
    minimum: float
    maximum: float
    top_channels: tuple[int, ...]  # by mean activation, strongest first

    @property
    def shape(self) -> tuple[int, int, int]:
        """(K, h, w)."""
        k, h, w = self.maps.shape
        return (int(k), int(h), int(w))


def layer_views(model: nn.Module, x: torch.Tensor, top: int = 5) -> list[LayerView]:
    """Every image-shaped layer output of ``model`` for ``x``, with statistics."""
    kinds = dict(feature_units(model))
    views = []
    for name, maps in feature_maps(model, x):
        means = maps.mean(dim=(1, 2))  # (K,): every channel has h·w values, so their mean is
        order = torch.argsort(means, descending=True)[:top]  # the layer's mean
        low, high = torch.aminmax(maps)  # one pass for both ends
        zeros = 1 - int(torch.count_nonzero(maps)) / maps.numel()
        kind = type(kinds[name]).__name__
        ranked = tuple(int(i) for i in order)
        views.append(
            LayerView(name, kind, maps, float(means.mean()), zeros, float(low), float(high), ranked)
        )
    return views


def producing_kernel(model: nn.Module, layer: str, channel: int) -> tuple[str, torch.Tensor] | None:
    """The conv kernel that made ``channel`` of ``layer``: (conv name, weights (C_in, k, k)).

    For a layer that acts per channel (batch norm, activation, pooling) it is the kernel of the
    last convolution before it; a residual block reports its second conv; None before any conv.
    """
    units = feature_units(model)
    names = [n for n, _ in units]
    if layer not in names:
        raise ValueError(f"The network has no layer named {layer!r}.")
    for name, module in reversed(units[: names.index(layer) + 1]):
        conv = getattr(module, "conv2", module)
        if isinstance(conv, nn.Conv2d):
            if channel >= conv.out_channels:
                return None
            return name, conv.weight[channel].detach().cpu()
        if not isinstance(
            module,
            nn.BatchNorm2d
            | nn.ReLU
            | nn.ReLU6
            | nn.LeakyReLU
            | nn.GELU
            | nn.Tanh
            | nn.Sigmoid
            | nn.MaxPool2d
            | nn.AvgPool2d
            | nn.Dropout,
        ):
            return None  # a layer that mixes channels in other ways: no single kernel
    return None


# 256-entry colour tables: indexing one is several times faster than interpolating the stops
# per pixel, and 256 levels are all an 8-bit image can show anyway.
_LEVELS = np.linspace(0.0, 1.0, 256)
_DIVERGING_LUT = _apply_stops(_LEVELS, DIVERGING_STOPS)
_SEQUENTIAL_LUT = _apply_stops(_LEVELS, SEQUENTIAL_STOPS)


def _colour(values: np.ndarray, scale: ColourScale) -> np.ndarray:
    """``values`` through the layer's colour scale, as uint8 RGB (..., 3)."""
    if scale.diverging:
        limit = max(abs(scale.vmin), abs(scale.vmax)) or 1.0
        t, lut = (values / limit + 1) / 2, _DIVERGING_LUT
    else:
        t, lut = (values - scale.vmin) / ((scale.vmax - scale.vmin) or 1.0), _SEQUENTIAL_LUT
    index = np.clip(np.nan_to_num(t, nan=0.5) * 255 + 0.5, 0, 255).astype(np.uint8)
    return lut[index]


def layer_scale(maps: torch.Tensor) -> ColourScale:
    """One colour scale for all channels of a layer: viridis from 0 for non-negative maps,
    a diverging scale symmetric around 0 otherwise."""
    low, high = float(maps.min()), float(maps.max())
    if low >= 0:
        return ColourScale(0.0, high, False)
    limit = max(-low, high)
    return ColourScale(-limit, limit, True)


def tile_maps(
    maps: torch.Tensor, labels: tuple[str, ...] | None = None, scale: ColourScale | None = None
) -> tuple[np.ndarray, ColourScale]:
    """All channels of ``maps`` (K, h, w) as one RGB image (a grid of labelled tiles).

    Tiles are enlarged by a whole factor (nearest neighbour, so pixels stay visible) or shrunk by
    area averaging towards :data:`TILE_TARGET` pixels; each carries its channel number.
    """
    k, h, w = maps.shape
    scale = scale or layer_scale(maps)
    side = max(h, w)
    if side > MAX_TILE:
        factor = MAX_TILE / side
        size = (max(1, round(h * factor)), max(1, round(w * factor)))
        maps = F.adaptive_avg_pool2d(maps[None], size)[0]
        h, w = size
    tiles = _colour(maps.numpy(), scale)  # (K, h, w, 3), coloured before any enlarging
    zoom = max(1, TILE_TARGET // side)
    if zoom > 1:
        tiles = tiles.repeat(zoom, axis=1).repeat(zoom, axis=2)
        h, w = h * zoom, w * zoom
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    gap, label_h = 2, 12
    sheet = np.full((rows * (h + gap + label_h), cols * (w + gap), 3), 255, np.uint8)
    for i in range(k):
        r, c = divmod(i, cols)
        top, left = r * (h + gap + label_h) + label_h, c * (w + gap)
        sheet[top : top + h, left : left + w] = tiles[i]
    picture = Image.fromarray(sheet)
    draw = ImageDraw.Draw(picture)
    for i in range(k):
        r, c = divmod(i, cols)
        text = str(i) if labels is None else f"{i} {labels[i]}"
        draw.text((c * (w + gap) + 1, r * (h + gap + label_h)), text[: max(2, w // 6)], fill=0)
    return np.asarray(picture), scale


def colour_map(values: torch.Tensor, scale: ColourScale | None = None) -> np.ndarray:
    """One map (h, w) in the layer's colours, as an RGB array."""
    scale = scale or layer_scale(values)
    return _colour(values.numpy(), scale)


def overlay(image: Image.Image, heat: torch.Tensor, opacity: float) -> np.ndarray:
    """``heat`` (H, W, ≥ 0 or signed) in viridis over ``image`` resized to match, blended."""
    if not 0 <= opacity <= 1:
        raise ValueError(f"The opacity must be between 0 and 1, got {opacity}.")
    h, w = heat.shape
    base = np.asarray(image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR), np.float64)
    values = heat.abs() if float(heat.min()) < 0 else heat
    top = float(values.max()) or 1.0
    colours = _apply_stops(values.numpy().astype(np.float64) / top, SEQUENTIAL_STOPS)
    blended = (1 - opacity) * base + opacity * colours
    return np.round(blended).astype(np.uint8)


def maps_npz(name: str, maps: torch.Tensor) -> bytes:
    """A layer's maps as a compressed ``.npz`` (arrays ``maps`` (K, h, w) and ``layer``)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, maps=maps.numpy(), layer=np.array(name))
    return buffer.getvalue()


def png_bytes(array: np.ndarray) -> bytes:
    """An RGB or gray array as PNG bytes (fast compression: big tiled sheets stay quick)."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def bars_png(labels: list[str], values: list[float], title: str) -> bytes:
    """Horizontal bars (values in [0, 1], e.g. probabilities) with labels, as PNG bytes."""
    row, label_w, bar_w = 22, 160, 320
    picture = Image.new("RGB", (label_w + bar_w + 70, row * (len(labels) + 1) + 8), "white")
    draw = ImageDraw.Draw(picture)
    draw.text((6, 4), title, fill=(0, 0, 0))
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        top = row * (i + 1) + 4
        draw.text((6, top + 4), label[:26], fill=(0, 0, 0))
        width = round(bar_w * min(max(value, 0.0), 1.0))
        draw.rectangle(
            (label_w, top + 2, label_w + max(width, 1), top + row - 4), fill=(0, 99, 204)
        )
        draw.text((label_w + width + 6, top + 4), f"{value:.1%}", fill=(0, 0, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def top5(
    scores: torch.Tensor, classes: tuple[str, ...], temperature: float = 1.0
) -> list[tuple[str, float]]:
    """The five most probable classes at softmax ``temperature``: [(class, probability)]."""
    probs = softmax(scores, temperature)
    values, indices = probs.topk(min(5, len(classes)))
    return [(classes[int(i)], float(v)) for v, i in zip(values, indices, strict=True)]


def softmax(scores: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """softmax(scores / T): T > 1 flattens the distribution, T < 1 sharpens it."""
    if not temperature > 0:
        raise ValueError(f"The temperature must be above 0, got {temperature}.")
    return torch.softmax(scores.detach().flatten().double() / temperature, dim=0).float()

"""A first layer that needs no training: oriented Gabor filters at several scales plus
colour-opponent centre–surround filters, the hand-made ancestors of what a CNN's first layer
learns (Hubel & Wiesel's simple cells; Krizhevsky et al. 2012, fig. 3).

:func:`classic_model` wraps the bank as conv → ReLU → 2×2 max-pool, so a photo of any size gives
meaningful first-layer maps on the feature-map explorer before any network is trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

KERNEL = 11  # every filter lives in an 11×11 window (the largest scale fits with room to decay)
ORIENTATIONS = (0, 45, 90, 135)  # degrees, 0 = a vertical bar (responds to horizontal change)
WAVELENGTHS = (4.0, 6.0, 9.0)  # pixels per cycle: three scales, fine to coarse
# Single-opponent cells: (name, centre colour, surround colour). The centre adds one colour, a
# wider surround subtracts its opponent; on any grey (R = G = B) the two cancel to exactly 0.
OPPONENTS = (
    ("red centre, green surround", (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    ("green centre, red surround", (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)),
    ("blue centre, yellow surround", (0.0, 0.0, 1.0), (0.5, 0.5, 0.0)),
    ("yellow centre, blue surround", (0.5, 0.5, 0.0), (0.0, 0.0, 1.0)),
)


@dataclass(frozen=True)
class ClassicFilter:
    """One filter of the bank and a label for the page."""

    label: str
    weight: np.ndarray  # (3, KERNEL, KERNEL)


def gabor(size: int, wavelength: float, theta_deg: float, phase: float, sigma: float) -> np.ndarray:
    """A zero-mean, unit-L2 Gabor kernel: a cosine grating under a Gaussian envelope."""
    half = (size - 1) / 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    theta = np.deg2rad(theta_deg)
    across = x * np.cos(theta) + y * np.sin(theta)  # the coordinate the grating varies along
    along = -x * np.sin(theta) + y * np.cos(theta)
    envelope = np.exp(-(across**2 + (0.5 * along) ** 2) / (2 * sigma**2))  # aspect ratio 0.5
    kernel = envelope * np.cos(2 * np.pi * across / wavelength + phase)
    kernel -= kernel.mean()  # zero mean: flat regions give 0, only structure responds
    return kernel / np.linalg.norm(kernel)


def _gaussian(size: int, sigma: float) -> np.ndarray:
    half = (size - 1) / 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    g = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return g / g.sum()


def classic_bank() -> tuple[ClassicFilter, ...]:
    """4 orientations × 3 scales × 2 phases of Gabor filters on luminance, then 4 colour-opponent
    centre–surround filters (each centre colour against its opponent around it)."""
    filters = []
    for wavelength in WAVELENGTHS:
        sigma = 0.56 * wavelength  # about one octave of bandwidth, as in V1 simple cells
        for theta in ORIENTATIONS:
            for phase, kind in ((0.0, "even"), (np.pi / 2, "odd")):
                g = gabor(KERNEL, wavelength, theta, phase, sigma)
                # The same filter on R, G and B, divided by 3: it sees luminance, not colour.
                weight = np.repeat(g[None] / 3, 3, axis=0)
                filters.append(ClassicFilter(f"Gabor {theta}° λ{wavelength:g} {kind}", weight))
    centre, surround = _gaussian(KERNEL, 1.5), _gaussian(KERNEL, 3.0)
    for name, inner, outer in OPPONENTS:
        weight = (
            np.asarray(inner)[:, None, None] * centre - np.asarray(outer)[:, None, None] * surround
        )
        filters.append(ClassicFilter(f"colour {name}", weight / np.linalg.norm(weight)))
    return tuple(filters)


def classic_model() -> nn.Sequential:
    """The bank as a network: conv (3 → 28, 11×11, same padding) → ReLU → 2×2 max-pool."""
    bank = classic_bank()
    conv = nn.Conv2d(3, len(bank), KERNEL, padding=KERNEL // 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.stack([f.weight for f in bank])).float())
    conv.weight.requires_grad_(False)
    return nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2)).eval()


def classic_labels() -> tuple[str, ...]:
    """One label per channel of :func:`classic_model`."""
    return tuple(f.label for f in classic_bank())

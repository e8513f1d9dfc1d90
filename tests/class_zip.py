"""Zips of one folder per class, made by the tests: tiny PNGs that a network can tell apart."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image


def png(array: np.ndarray) -> bytes:
    """A uint8 (H, W) or (H, W, 3) array as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def class_zip(classes: tuple[str, ...] = ("left", "right"), per_class: int = 12, side: int = 12):
    """A zip with ``per_class`` noisy PNGs per class folder; class i is bright in band i."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for label, name in enumerate(classes):
            for i in range(per_class):
                image = rng.integers(0, 60, (side, side), dtype=np.uint8)
                band = slice(label * side // len(classes), (label + 1) * side // len(classes))
                image[:, band] = 255 - image[:, band]
                archive.writestr(f"{name}/{i}.png", png(image))
    return buf.getvalue()

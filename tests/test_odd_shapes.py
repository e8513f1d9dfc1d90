"""Every page that takes an image, fed the odd shapes a learner can upload: no traceback, and
every figure, picture and metric still there (the count a normal sample gives)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from pagetest import app_test
from PIL import Image

# (page, image picker key): every page built on ui.image_source.image_picker.
IMAGE_PAGES = (
    ("pages/convolution.py", "conv.image"),
    ("pages/pooling.py", "pool.image"),
    ("pages/receptive_field.py", "rf.image"),
    ("pages/activations.py", "norm.image"),
    ("pages/conv_variants.py", "variants.image"),
    ("pages/explorer.py", "explorer.image"),
)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(width * 7919 + height)
    channels = {"RGB": 3, "RGBA": 4}.get(mode)
    shape = (height, width) if channels is None else (height, width, channels)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


def _gray16(width: int, height: int) -> Image.Image:
    ramp = np.linspace(0, 65535, width * height).reshape(height, width).astype(np.uint16)
    return Image.fromarray(ramp)  # mode I;16


ODD_IMAGES = {
    "1x1": _noise(1, 1),
    "1x4000 strip": _noise(1, 4000),
    "4000x1 strip": _noise(4000, 1),
    "600x10 banner": _noise(600, 10),
    "3x3": _noise(3, 3),
    "2x2 RGBA": _noise(2, 2, "RGBA"),
    "16-bit grey": _gray16(40, 24),
}


def _shown(at) -> dict[str, int]:
    """How many figures, pictures and metrics the page drew."""
    return {
        "charts": len(at.get("plotly_chart")),
        "images": len(at.get("image")),
        "metrics": len(at.metric),
    }


@pytest.mark.parametrize(("script", "key"), IMAGE_PAGES, ids=[p for p, _ in IMAGE_PAGES])
def test_odd_images_render_the_whole_page(script: str, key: str) -> None:
    # One AppTest per page, every odd image uploaded in turn: each run is cheap once warm.
    at = app_test(script, timeout=240).run()
    at.radio(key=f"{key}.source").set_value("Upload").run()
    assert not at.exception, [e.value for e in at.exception]
    usual = _shown(at)  # the default sample, drawn while nothing is uploaded
    for name, image in ODD_IMAGES.items():
        at.file_uploader(key=f"{key}.upload").set_value((f"{name}.png", _png(image), "image/png"))
        at.run()
        assert not at.exception, (name, [e.value for e in at.exception])
        assert not at.error, (name, [e.value for e in at.error])
        shown = _shown(at)
        assert shown["charts"] == usual["charts"], (name, shown, usual)
        assert shown["metrics"] == usual["metrics"], (name, shown, usual)
        # The explorer draws one picture per preprocessing step, and their number varies.
        slack = 2 if "explorer" in script else 0
        assert shown["images"] >= usual["images"] - slack, (name, shown, usual)
        if "convolution" in script:  # its tabs run only when open: the step-by-step one too
            at.session_state["conv.view"] = "Step by step"
            at.run()
            assert not at.exception, (name, [e.value for e in at.exception])
            assert at.code, name  # the window's sum, written out
            at.session_state["conv.view"] = "Feature map"

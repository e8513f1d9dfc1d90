"""AppTest tests of ui.image_source.image_picker, and the cache-key regression test."""

from __future__ import annotations

import io

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnnlab.images import SAMPLES, image_digest, load_image, pattern_image
from ui.image_source import ImageSource, cache_on_image

SCRIPT = """
import streamlit as st
from ui.image_source import image_picker

source = image_picker("t", default_sample="camera", max_side={max_side}, allow_draw={allow_draw})
st.markdown(f"name={{source.name}}")
st.markdown(f"size={{source.image.width}}x{{source.image.height}} mode={{source.image.mode}}")
st.markdown(f"digest={{source.digest}}")
st.markdown(f"notice={{source.notice}}")
"""


def app(max_side: int = 1024, allow_draw: bool = True) -> AppTest:
    """The picker alone on a page, printing what it returned."""
    at = AppTest.from_string(
        SCRIPT.format(max_side=max_side, allow_draw=allow_draw), default_timeout=30
    )
    at.run()
    assert not at.exception
    return at


def shown(at: AppTest) -> dict[str, str]:
    """The ``name=…``, ``size=…``, ``digest=…`` lines the script printed."""
    lines = [m.value for m in at.markdown if "=" in m.value]
    return {line.split("=", 1)[0]: line.split("=", 1)[1] for line in lines}


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def test_default_is_the_default_sample_with_a_thumbnail() -> None:
    at = app()
    values = shown(at)
    assert values["name"] == SAMPLES["camera"].title
    assert values["size"] == "512x512 mode=L"
    assert len(at.get("image")) == 1
    assert at.radio(key="t.source").options == ["Sample", "Pattern", "Upload", "Camera", "Draw"]


def test_choosing_a_sample() -> None:
    at = app()
    at.selectbox(key="t.sample").set_value("cat").run()
    assert not at.exception
    values = shown(at)
    assert values["name"] == SAMPLES["cat"].title
    assert values["size"] == "451x300 mode=RGB"


def test_choosing_a_pattern() -> None:
    at = app()
    at.radio(key="t.source").set_value("Pattern").run()
    at.selectbox(key="t.pattern").set_value("impulse").run()
    at.select_slider(key="t.pattern_size").set_value(32).run()
    assert not at.exception
    values = shown(at)
    assert values["size"] == "32x32 mode=L"
    assert values["digest"] == image_digest(pattern_image("impulse", 32))


def test_uploading_an_image() -> None:
    source = Image.fromarray(np.arange(40 * 30 * 3, dtype=np.uint8).reshape(30, 40, 3), "RGB")
    data = png_bytes(source)
    at = app()
    at.radio(key="t.source").set_value("Upload").run()
    assert any("No file uploaded yet" in c.value for c in at.caption)
    at.file_uploader(key="t.upload").set_value(("mine.png", data, "image/png")).run()
    assert not at.exception
    assert not at.error
    values = shown(at)
    assert values["name"] == "mine.png"
    assert values["size"] == "40x30 mode=RGB"
    assert values["digest"] == image_digest(load_image(data))
    assert values["notice"] == "None"


def test_uploading_a_huge_image_shows_the_downscale_notice() -> None:
    at = app(max_side=256)
    at.radio(key="t.source").set_value("Upload").run()
    big = png_bytes(Image.new("L", (1000, 300), 90))
    at.file_uploader(key="t.upload").set_value(("big.png", big, "image/png")).run()
    assert not at.exception
    assert shown(at)["size"] == "256x77 mode=L"
    assert len(at.info) == 1
    assert "1000×300" in at.info[0].value


def test_uploading_garbage_shows_the_error_and_falls_back_to_the_sample() -> None:
    at = app()
    at.radio(key="t.source").set_value("Upload").run()
    at.file_uploader(key="t.upload").set_value(("bad.png", b"not a png at all" * 8, "image/png"))
    at.run()
    assert not at.exception
    assert len(at.error) == 1
    assert "not an image CNN Lab can read" in at.error[0].value
    values = shown(at)
    assert values["name"] == SAMPLES["camera"].title
    assert values["size"] == "512x512 mode=L"


def test_truncated_upload_then_a_good_one() -> None:
    good = png_bytes(Image.effect_noise((64, 48), 40).convert("RGB"))
    at = app()
    at.radio(key="t.source").set_value("Upload").run()
    at.file_uploader(key="t.upload").set_value(("cut.png", good[: len(good) // 2], "image/png"))
    at.run()
    assert "damaged" in at.error[0].value
    at.file_uploader(key="t.upload").set_value(("whole.png", good, "image/png")).run()
    assert not at.error
    assert shown(at)["size"] == "64x48 mode=RGB"


def test_camera_photo() -> None:
    photo = png_bytes(Image.new("RGB", (64, 48), (10, 120, 200)), "JPEG")
    at = app()
    at.radio(key="t.source").set_value("Camera").run()
    assert any("No photo taken yet" in c.value for c in at.caption)
    at.camera_input(key="t.camera").set_value(("shot.jpg", photo, "image/jpeg")).run()
    assert not at.exception
    assert shown(at)["size"] == "64x48 mode=RGB"


def test_drawing_source_starts_on_the_fallback_without_error() -> None:
    at = app()
    at.radio(key="t.source").set_value("Draw").run()
    assert not at.exception
    assert shown(at)["name"] == SAMPLES["camera"].title
    assert at.slider(key="t.stroke").value == 20


def test_draw_can_be_left_out() -> None:
    at = app(allow_draw=False)
    assert "Draw" not in at.radio(key="t.source").options


# --- cache keyed on exact digests ----------------------------------------------------------


def test_cached_results_differ_for_one_pixel_and_for_shape() -> None:
    calls: list[str] = []

    @cache_on_image
    def describe(image: Image.Image) -> tuple[tuple[int, int], int]:
        calls.append(image_digest(image))
        return image.size, int(np.asarray(image, dtype=np.int64).sum())

    base = Image.new("L", (1024, 1024), 0)
    one_pixel = base.copy()
    one_pixel.putpixel((517, 233), 1)
    reshaped = Image.frombytes("L", (2048, 512), base.tobytes())
    try:
        assert describe(base) == ((1024, 1024), 0)
        assert describe(one_pixel) == ((1024, 1024), 1)
        assert describe(reshaped) == ((2048, 512), 0)
        assert describe(base.copy()) == ((1024, 1024), 0)
        assert len(calls) == 3  # the equal copy was a cache hit
    finally:
        describe.clear()


def test_plain_cache_data_would_collide_on_shape() -> None:
    # Why cache_on_image exists: Streamlit hashes a PIL image's bytes but not its size.
    @st.cache_data(max_entries=4)
    def size_of(image: Image.Image) -> tuple[int, int]:
        return image.size

    data = bytes(range(256)) * 16
    try:
        assert size_of(Image.frombytes("L", (64, 64), data)) == (64, 64)
        assert size_of(Image.frombytes("L", (128, 32), data)) == (64, 64)
    finally:
        size_of.clear()


def test_cache_hashes_image_sources_arrays_and_decoder_subclasses() -> None:
    @cache_on_image(max_entries=8)
    def total(value: object) -> float:
        if isinstance(value, ImageSource):
            value = value.image
        return float(np.asarray(value, dtype=np.float64).sum())

    big = np.zeros((1000, 1000), dtype=np.float32)
    changed = big.copy()
    changed[999, 3] = 2.0
    image = Image.new("L", (8, 8), 1)
    decoded = Image.open(io.BytesIO(png_bytes(Image.new("L", (8, 8), 3))))
    assert type(decoded) is not Image.Image
    try:
        assert total(big) == 0.0
        assert total(changed) == 2.0
        source = ImageSource(image, "ones", image_digest(image), None)
        assert total(source) == 64.0
        assert total(decoded) == 192.0
    finally:
        total.clear()


@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_sample_can_be_picked(name: str) -> None:
    at = app()
    at.selectbox(key="t.sample").set_value(name).run()
    assert not at.exception
    assert shown(at)["name"] == SAMPLES[name].title

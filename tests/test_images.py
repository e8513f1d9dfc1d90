"""Tests for cnnlab.images: every image here is created in memory by the test itself."""

from __future__ import annotations

import io
import math
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from cnnlab import images
from cnnlab.images import (
    MAX_PIXELS,
    PATTERNS,
    SAMPLES,
    downscale_notice,
    drawing_image,
    image_digest,
    load_image,
    pattern_image,
    sample_image,
    stretch_notice,
    to_array,
    working_image,
    working_size,
)

LOSSLESS = ("PNG", "BMP", "TIFF")


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    """Save ``image`` as ``fmt`` into bytes."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def gradient_rgb(width: int = 48, height: int = 32) -> Image.Image:
    """An RGB image whose every pixel differs, so misplaced pixels are caught."""
    y, x = np.indices((height, width))
    pixels = np.stack([x * 5 % 256, y * 7 % 256, (x + y) * 3 % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` but carries (almost) no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


# --- formats -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", LOSSLESS)
def test_lossless_formats_round_trip_exactly(fmt: str) -> None:
    source = gradient_rgb()
    loaded = load_image(encode(source, fmt))
    assert loaded.mode == "RGB"
    assert loaded.size == source.size
    assert np.array_equal(np.asarray(loaded), np.asarray(source))


@pytest.mark.parametrize(("fmt", "params"), [("JPEG", {"quality": 95}), ("WEBP", {"quality": 95})])
def test_lossy_formats_load_close_to_the_source(fmt: str, params: dict) -> None:
    source = Image.new("RGB", (40, 30), (200, 60, 20))
    loaded = load_image(encode(source, fmt, **params))
    assert loaded.mode == "RGB"
    assert loaded.size == (40, 30)
    error = np.abs(np.asarray(loaded, dtype=int) - np.asarray(source, dtype=int))
    assert error.max() <= 6


def test_grayscale_stays_single_channel() -> None:
    source = Image.fromarray(np.arange(60, dtype=np.uint8).reshape(6, 10), "L")
    loaded = load_image(encode(source, "PNG"))
    assert loaded.mode == "L"
    assert np.array_equal(np.asarray(loaded), np.asarray(source))


def test_gif_gives_its_first_frame() -> None:
    red = Image.new("RGB", (16, 16), (255, 0, 0))
    blue = Image.new("RGB", (16, 16), (0, 0, 255))
    data = encode(red, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)
    loaded = load_image(data)
    assert loaded.mode == "RGB"
    assert loaded.getpixel((8, 8)) == (255, 0, 0)


def test_phone_style_mpo_jpeg_loads_its_first_picture() -> None:
    first = Image.new("RGB", (32, 16), (10, 200, 30))
    data = encode(first, "MPO", save_all=True, append_images=[Image.new("RGB", (32, 16))])
    loaded = load_image(data)
    assert loaded.size == (32, 16)
    assert np.abs(np.asarray(loaded, dtype=int) - (10, 200, 30)).max() <= 6


def test_other_formats_are_refused_even_if_pillow_knows_them() -> None:
    ppm = encode(Image.new("L", (4, 4)), "PPM")
    with pytest.raises(ValueError, match="PNG, JPEG, WebP, BMP, GIF or TIFF"):
        load_image(ppm)


# --- modes ---------------------------------------------------------------------------------


def test_bilevel_becomes_black_and_white_gray() -> None:
    bits = np.zeros((8, 8), dtype=bool)
    bits[2:5, 3:6] = True
    loaded = load_image(encode(Image.fromarray(bits), "PNG"))
    assert loaded.mode == "L"
    assert np.array_equal(np.asarray(loaded), bits.astype(np.uint8) * 255)


def test_palette_without_transparency_keeps_its_colours() -> None:
    source = gradient_rgb().quantize(colors=16)
    expected = np.asarray(source.convert("RGB"))
    loaded = load_image(encode(source, "PNG"))
    assert loaded.mode == "RGB"
    assert np.array_equal(np.asarray(loaded), expected)


def test_palette_transparency_becomes_white() -> None:
    source = Image.new("P", (4, 4), 0)
    source.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    source.putpixel((1, 1), 1)
    loaded = load_image(encode(source, "PNG", transparency=0))
    assert loaded.mode == "RGB"
    assert loaded.getpixel((0, 0)) == (255, 255, 255)
    assert loaded.getpixel((1, 1)) == (255, 0, 0)


def test_rgba_is_composited_on_white() -> None:
    pixels = np.array(
        [[[200, 0, 0, 255], [200, 0, 0, 0], [200, 0, 0, 128], [0, 0, 0, 64]]], dtype=np.uint8
    )
    loaded = load_image(encode(Image.fromarray(pixels, "RGBA"), "PNG"))
    assert loaded.mode == "RGB"
    alpha = pixels[..., 3:] / 255.0
    expected = pixels[..., :3] * alpha + 255 * (1 - alpha)
    assert np.abs(np.asarray(loaded, dtype=float) - expected).max() <= 1.0


def test_gray_with_alpha_is_composited_on_white_and_stays_gray() -> None:
    pixels = np.array([[[0, 255], [0, 0], [100, 128]]], dtype=np.uint8)
    loaded = load_image(encode(Image.fromarray(pixels, "LA"), "PNG"))
    assert loaded.mode == "L"
    alpha = pixels[..., 1] / 255.0
    expected = pixels[..., 0] * alpha + 255 * (1 - alpha)
    assert np.abs(np.asarray(loaded, dtype=float) - expected).max() <= 1.0


def test_cmyk_is_converted_to_rgb() -> None:
    source = Image.new("CMYK", (6, 4), (255, 0, 0, 0))  # pure cyan ink
    source.paste((0, 0, 0, 255), (3, 0, 6, 4))  # black ink
    loaded = load_image(encode(source, "TIFF"))
    assert loaded.mode == "RGB"
    assert loaded.getpixel((0, 0)) == (0, 255, 255)
    assert loaded.getpixel((5, 3)) == (0, 0, 0)


def test_cmyk_jpeg_loads_as_rgb() -> None:
    loaded = load_image(encode(Image.new("CMYK", (16, 16), (0, 255, 0, 0)), "JPEG", quality=95))
    assert loaded.mode == "RGB"
    assert np.abs(np.asarray(loaded, dtype=int) - (255, 0, 255)).max() <= 6  # magenta


def test_sixteen_bit_gray_is_scaled_not_clipped() -> None:
    values = np.array([[0, 1000, 30000, 65535]], dtype=np.uint16)
    source = Image.fromarray(values)
    loaded = load_image(encode(source, "PNG"))
    assert loaded.mode == "L"
    assert np.asarray(loaded).tolist() == [[0, 4, 117, 255]]


def test_sixteen_bit_tiff_is_scaled() -> None:
    values = np.array([[0, 256 * 100, 65535]], dtype=np.uint16)
    loaded = load_image(encode(Image.fromarray(values), "TIFF"))
    assert np.asarray(loaded).tolist() == [[0, 100, 255]]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([[0, 17, 255]], [[0, 17, 255]]),  # already 8-bit: kept
        ([[0, 25700, 65535]], [[0, 100, 255]]),  # 16-bit range: scaled by 255/65535
        ([[-1000, 0, 1000]], [[0, 128, 255]]),  # anything else: stretched
    ],
)
def test_thirty_two_bit_integer_images(values: list, expected: list) -> None:
    source = Image.fromarray(np.array(values, dtype=np.int32), "I")
    loaded = load_image(encode(source, "TIFF"))
    assert loaded.mode == "L"
    assert np.asarray(loaded).tolist() == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([[0.0, 0.5, 1.0]], [[0, 128, 255]]),  # unit range: ×255
        ([[0.0, 100.4, 255.0]], [[0, 100, 255]]),  # 8-bit range: kept
        ([[-2.0, 0.0, 2.0]], [[0, 128, 255]]),  # signed: stretched
        ([[3.0, 1e6, 7.0]], [[0, 255, 0]]),  # huge: stretched, not clipped to white
        ([[math.nan, 0.25, math.inf]], [[64, 64, 64]]),  # non-finite: the darkest value
    ],
)
def test_float_images(values: list, expected: list) -> None:
    source = Image.fromarray(np.array(values, dtype=np.float32), "F")
    loaded = load_image(encode(source, "TIFF"))
    assert loaded.mode == "L"
    assert np.asarray(loaded).tolist() == expected


@pytest.mark.parametrize("mode", ["La", "PA", "RGBa", "RGBX", "YCbCr", "HSV", "I;16B"])
def test_rarer_modes_normalise_to_rgb_or_l(mode: str) -> None:
    source = Image.new(mode, (5, 3))
    result = images._normalise_mode(source)
    assert result.mode in ("RGB", "L")
    assert result.size == (5, 3)


# --- EXIF orientation ----------------------------------------------------------------------


def with_orientation(image: Image.Image, fmt: str, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, fmt, exif=exif)


def left_red_right_blue(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height))
    return image


def test_exif_orientation_is_applied() -> None:
    # Orientation 6: the stored picture must be turned 90° clockwise to be seen upright, so its
    # left (red) half ends up on top.
    loaded = load_image(with_orientation(left_red_right_blue(40, 20), "PNG", 6))
    assert loaded.size == (20, 40)
    assert loaded.getpixel((10, 5)) == (255, 0, 0)
    assert loaded.getpixel((10, 35)) == (0, 0, 255)
    assert "exif" not in loaded.info


def test_exif_orientation_and_downscale_together() -> None:
    data = with_orientation(left_red_right_blue(3000, 1000), "JPEG", 6)
    loaded = load_image(data, max_side=1024)
    assert loaded.info["original_size"] == (1000, 3000)
    assert loaded.size == (341, 1024)
    assert np.abs(np.asarray(loaded.getpixel((170, 100)), dtype=int) - (255, 0, 0)).max() <= 8


def test_mirrored_orientation() -> None:
    loaded = load_image(with_orientation(left_red_right_blue(40, 20), "PNG", 2))
    assert loaded.size == (40, 20)
    assert loaded.getpixel((5, 10)) == (0, 0, 255)


# --- refusals ------------------------------------------------------------------------------


def test_empty_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        load_image(b"")


def test_non_image_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="not an image"):
        load_image(b"%PDF-1.4 this is certainly not a picture" * 20)


def test_zero_size_image_is_refused() -> None:
    # Pillow itself rejects a 0-pixel-wide PNG header; the message must still make sense.
    with pytest.raises(ValueError, match="no pixels"):
        load_image(png_header_only(0, 16))


def test_zero_size_guard_when_a_decoder_reports_no_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images.Image, "open", lambda *a, **k: Image.new("L", (0, 7)))
    with pytest.raises(ValueError, match="0×7 pixels"):
        load_image(b"anything")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_truncated_files_are_refused(fmt: str) -> None:
    noisy = Image.effect_noise((120, 90), 60).convert("RGB")
    data = encode(noisy, fmt)
    with pytest.raises(ValueError, match="damaged"):
        load_image(data[: len(data) // 2])


def test_truncated_files_do_not_change_pillows_global_setting() -> None:
    data = encode(gradient_rgb(), "PNG")
    with pytest.raises(ValueError, match="damaged"):
        load_image(data[:-40])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    "size",
    [
        (100_000, 100_000),  # beyond Pillow's own bomb limit
        (8_000, 8_000),  # 64 megapixels: under Pillow's limit, over ours
    ],
)
def test_decompression_bomb_is_refused_without_decoding(
    size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(self: ImageFile.ImageFile) -> None:
        raise AssertionError("a bomb must be refused before its pixels are decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", never)
    assert size[0] * size[1] > MAX_PIXELS
    with pytest.raises(ValueError, match="too large"):
        load_image(png_header_only(*size))


def test_size_in_pillows_warning_range_is_refused() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused, not merely warned about
        with pytest.raises(ValueError, match="too large"):
            load_image(png_header_only(10_000, 10_000))


def test_invalid_max_side() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        load_image(encode(gradient_rgb(), "PNG"), max_side=0)


# --- downscaling ---------------------------------------------------------------------------


def test_huge_image_is_downscaled_with_a_notice() -> None:
    loaded = load_image(encode(Image.new("L", (2000, 1000), 80), "PNG"))
    assert loaded.size == (1024, 512)
    assert loaded.info["original_size"] == (2000, 1000)
    notice = downscale_notice(loaded)
    assert notice is not None
    assert "2000×1000" in notice
    assert "1024×512" in notice
    assert np.asarray(loaded).min() == np.asarray(loaded).max() == 80


def test_max_side_is_configurable_and_keeps_aspect() -> None:
    loaded = load_image(encode(gradient_rgb(300, 200), "PNG"), max_side=90)
    assert loaded.size == (90, 60)
    assert loaded.info["original_size"] == (300, 200)


def test_jpeg_draft_decoding_gives_the_exact_target_size() -> None:
    loaded = load_image(encode(gradient_rgb(4000, 3000), "JPEG"), max_side=1024)
    assert loaded.size == (1024, 768)
    assert loaded.info["original_size"] == (4000, 3000)


def test_small_image_has_no_notice() -> None:
    loaded = load_image(encode(gradient_rgb(), "PNG"))
    assert "original_size" not in loaded.info
    assert downscale_notice(loaded) is None


def test_exactly_max_side_is_not_resized() -> None:
    loaded = load_image(encode(gradient_rgb(64, 20), "PNG"), max_side=64)
    assert loaded.size == (64, 20)
    assert downscale_notice(loaded) is None


# --- digest --------------------------------------------------------------------------------


def test_digest_is_stable_for_equal_images() -> None:
    first, second = gradient_rgb(), gradient_rgb()
    second.info["note"] = "metadata is not pixels"
    assert first is not second
    assert image_digest(first) == image_digest(second)
    assert len(image_digest(first)) == 64


def test_digest_changes_with_one_pixel() -> None:
    base = Image.new("L", (512, 512), 0)
    changed = base.copy()
    changed.putpixel((301, 207), 1)
    assert image_digest(base) != image_digest(changed)


def test_digest_changes_with_shape_for_the_same_bytes() -> None:
    data = bytes(range(48))
    wide = Image.frombytes("L", (12, 4), data)
    tall = Image.frombytes("L", (4, 12), data)
    colour = Image.frombytes("RGB", (4, 4), data)
    assert wide.tobytes() == tall.tobytes() == colour.tobytes()
    assert len({image_digest(wide), image_digest(tall), image_digest(colour)}) == 3


@settings(max_examples=30, deadline=None)
@given(
    width=st.integers(1, 12),
    height=st.integers(1, 12),
    mode=st.sampled_from(["L", "RGB"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_png_round_trip_keeps_the_digest(width: int, height: int, mode: str, seed: int) -> None:
    channels = 3 if mode == "RGB" else 1
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), np.uint8)
    source = Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)
    loaded = load_image(encode(source, "PNG"))
    assert image_digest(loaded) == image_digest(source)


# --- arrays --------------------------------------------------------------------------------


def test_to_array_rgb_is_channels_first_in_unit_range() -> None:
    source = gradient_rgb(7, 5)
    array = to_array(source, grayscale=False)
    assert array.shape == (3, 5, 7)
    assert array.dtype == np.float32
    assert array.flags.c_contiguous
    expected = np.asarray(source).transpose(2, 0, 1) / 255.0
    assert np.allclose(array, expected, atol=1e-7)


def test_to_array_grayscale_uses_luma() -> None:
    source = Image.new("RGB", (3, 2), (255, 0, 0))
    array = to_array(source, grayscale=True)
    assert array.shape == (2, 3)
    assert np.allclose(array, round(0.299 * 255) / 255, atol=1e-6)


def test_to_array_gray_image_to_rgb_repeats_the_channel() -> None:
    array = to_array(Image.new("L", (2, 2), 51), grayscale=False)
    assert array.shape == (3, 2, 2)
    assert np.allclose(array, 0.2)


# --- drawings ------------------------------------------------------------------------------


def test_drawing_transparent_or_black_background_gives_white_on_black() -> None:
    transparent = np.zeros((10, 10, 4), dtype=np.uint8)
    transparent[4:6, 2:8] = (255, 255, 255, 255)
    opaque = transparent.copy()
    opaque[..., 3] = 255
    for rgba in (transparent, opaque):
        image = drawing_image(rgba)
        assert image.mode == "L"
        pixels = np.asarray(image)
        assert pixels[5, 5] == 255
        assert pixels[0, 0] == 0
        assert pixels.sum() == 12 * 255


def test_drawing_with_a_bad_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="RGBA"):
        drawing_image(np.zeros((10, 10, 3), dtype=np.uint8))


# --- samples and patterns ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SAMPLES))
def test_samples_load_small_and_are_listed_in_the_notice(name: str) -> None:
    image = sample_image(name)
    assert image.mode in ("RGB", "L")
    assert max(image.size) <= 512
    notice = (Path(images.SAMPLES_DIR).parent / "NOTICE.md").read_text()
    assert f"`{SAMPLES[name].file}`" in notice
    assert SAMPLES[name].licence in ("Public domain", "CC0 1.0")


def test_sample_set_covers_the_required_kinds() -> None:
    assert len(SAMPLES) >= 5
    assert {"astronaut", "cat", "camera", "brick", "digit"} <= set(SAMPLES)
    assert sample_image("digit").size == (28, 28)
    assert sample_image("astronaut").mode == "RGB"


def test_samples_are_independent_copies() -> None:
    first = sample_image("digit")
    assert first.getpixel((0, 0)) == 0
    first.putpixel((0, 0), 200)
    assert sample_image("digit").getpixel((0, 0)) == 0


def test_assets_stay_small() -> None:
    total = sum(path.stat().st_size for path in Path(images.SAMPLES_DIR).iterdir())
    assert total < 2_000_000


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="no sample"):
        sample_image("dog")
    with pytest.raises(ValueError, match="no pattern"):
        pattern_image("spiral")
    with pytest.raises(ValueError, match="8 to 2048"):
        pattern_image("circle", size=4)


@pytest.mark.parametrize("name", list(PATTERNS))
@pytest.mark.parametrize("size", [16, 128, 97])
def test_patterns_are_square_gray_and_use_the_full_range(name: str, size: int) -> None:
    image = pattern_image(name, size)
    assert image.mode == "L"
    assert image.size == (size, size)
    pixels = np.asarray(image)
    assert pixels.min() == 0
    assert pixels.max() == 255


def test_impulse_is_one_bright_pixel_at_the_centre() -> None:
    pixels = np.asarray(pattern_image("impulse", 33))
    assert np.count_nonzero(pixels) == 1
    assert pixels[16, 16] == 255


def test_step_edge_is_one_vertical_edge() -> None:
    pixels = np.asarray(pattern_image("step edge", 10))
    assert (pixels[:, :5] == 0).all()
    assert (pixels[:, 5:] == 255).all()


def test_checkerboard_alternates() -> None:
    pixels = np.asarray(pattern_image("checkerboard", 64))
    assert pixels[0, 0] == 0
    assert pixels[0, 8] == 255
    assert pixels[8, 0] == 255
    assert pixels[8, 8] == 0
    assert set(np.unique(pixels)) == {0, 255}


def test_circle_area_and_symmetry() -> None:
    pixels = np.asarray(pattern_image("circle", 128), dtype=float) / 255
    assert pixels.sum() == pytest.approx(math.pi * (0.3 * 128) ** 2, rel=0.01)
    assert np.allclose(pixels, pixels[::-1, :])
    assert np.allclose(pixels, pixels.T)


def test_stripes_run_at_thirty_degrees() -> None:
    pixels = np.asarray(pattern_image("stripes", 128), dtype=float) / 255
    assert pixels.mean() == pytest.approx(0.5, abs=0.02)
    # Along the stripe direction (cos 30°, sin 30°) the value barely changes; across it, it does.
    y, x = 40.0, 40.0
    along = [pixels[round(y + t * 0.5), round(x + t * math.sqrt(3) / 2)] for t in range(0, 40, 2)]
    across = [pixels[round(y + t * math.sqrt(3) / 2), round(x - t * 0.5)] for t in range(0, 40)]
    assert np.ptp(along) < 0.8
    assert np.ptp(across) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(
    ("size", "longer", "shortest", "expected"),
    [
        ((512, 256), 64, 1, (64, 32)),  # aspect kept
        ((1, 1024), 128, 16, (16, 128)),  # a strip is stretched across, not 0 pixels thin
        ((600, 10), 64, 16, (64, 16)),
        ((3, 3), 128, 48, (128, 128)),  # tiny images are enlarged whole
        ((40, 24), 128, 16, (128, 77)),
    ],
)
def test_working_size(size: tuple, longer: int, shortest: int, expected: tuple) -> None:
    assert working_size(*size, longer, shortest) == expected
    image = working_image(Image.new("L", size, 7), longer, shortest)
    assert image.size == expected
    assert np.all(np.asarray(image) == 7)  # a box filter keeps a flat image flat


def test_stretch_notice_says_what_happened_only_when_it_did() -> None:
    notice = stretch_notice(600, 10, 64, 16, "the windows")
    assert notice is not None
    for part in ("600×10", "64×1,", "64×16", "the windows"):
        assert part in notice
    assert stretch_notice(512, 256, 64, 16, "the windows") is None
    assert stretch_notice(3, 3, 128, 48, "the windows") is None  # enlarged, not distorted
    with pytest.raises(ValueError, match="positive"):
        working_size(0, 10, 64)

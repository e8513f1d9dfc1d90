"""Image sources shared by every page: defensive loading, bundled samples, synthetic patterns.

Everything a page shows starts here as a ``PIL.Image.Image`` in mode ``"RGB"`` or ``"L"``:

- :func:`load_image` turns uploaded bytes (PNG, JPEG, WebP, BMP, GIF, TIFF) into such an image, or
  raises ``ValueError`` with a sentence a learner can act on;
- :func:`sample_image` opens one of the bundled :data:`SAMPLES` (``assets/samples``);
- :func:`pattern_image` draws one of the synthetic :data:`PATTERNS`;
- :func:`drawing_image` turns a white-on-black canvas drawing into an image;
- :func:`to_array` makes the float array a tensor is built from;
- :func:`image_digest` is the cache key: Streamlit hashes big arrays by sampling and PIL images
  without their size or mode, so caching on anything weaker could show one learner another's result.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "samples"

# Pixels we agree to decode. A 50-megapixel photo still loads (JPEGs are decoded at reduced scale,
# so it costs little); anything bigger is refused from its header, before a single pixel is
# allocated, which is what stops a decompression bomb (a tiny file declaring a gigantic image).
MAX_PIXELS = 50_000_000
# Pillow's own bomb check, set on purpose rather than inherited: it warns above this many pixels
# and refuses above twice as many, a second line behind the header check in load_image.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# Pillow's names for the formats we decode. Only these plugins are tried, which keeps exotic
# decoders (EPS runs Ghostscript, for one) away from uploads. The JPEG plugin also opens the MPO
# files many phones write (a JPEG with extra preview frames).
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")

UPLOAD_TYPES = ("png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff")
"""File extensions for an upload widget, matching :data:`FORMATS`."""

_FORMAT_HELP = "Please use a PNG, JPEG, WebP, BMP, GIF or TIFF image."

# Errors Pillow's decoders raise on corrupt data: besides OSError, several plugins raise
# SyntaxError, struct.error, ValueError or lookup errors for malformed headers.
_DECODE_ERRORS = (
    OSError, SyntaxError, struct.error, EOFError, IndexError, KeyError, TypeError, ValueError,
    zlib.error, MemoryError,
)  # fmt: skip


def load_image(data: bytes, max_side: int = 1024) -> Image.Image:
    """Decode image file bytes into an ``"RGB"`` or ``"L"`` image no larger than ``max_side``.

    EXIF orientation is applied; transparency is composited on white; palette, CMYK, 1-bit,
    16-bit, 32-bit integer and float images are converted (see :func:`_normalise_mode`); GIFs and
    other multi-frame files give their first frame. If the longer side exceeds ``max_side`` the
    image is downscaled (aspect kept, Lanczos) and ``image.info["original_size"]`` holds the size
    before downscaling (after EXIF rotation); otherwise that key is absent.

    Raises ``ValueError`` with a learner-readable message for empty or non-image bytes, truncated
    or corrupt files, unsupported formats, zero-size images and images over :data:`MAX_PIXELS`.
    """
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 1:
        raise ValueError(f"The maximum image side must be at least 1 pixel, not {max_side!r}.")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError("An image must be given as the bytes of its file.")
    if not data:
        raise ValueError("The file is empty (0 bytes). " + _FORMAT_HELP)
    try:
        with warnings.catch_warnings():
            # Above MAX_PIXELS Pillow only warns: make that the refusal it should be.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        # Pillow also lands here for headers it rejects outright, such as a 0-pixel-wide image.
        raise ValueError(
            "This file is not an image CNN Lab can read: it may be another kind of file, a "
            "damaged image or an image with no pixels. " + _FORMAT_HELP
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow refuses (or, if warnings are errors, warns about) absurd sizes by itself.
        raise ValueError(_too_big_message()) from None
    except _DECODE_ERRORS:
        raise ValueError("This image file is damaged and cannot be read. " + _FORMAT_HELP) from None
    with image:
        width, height = image.size
        if width < 1 or height < 1:
            raise ValueError(f"This image is {width}×{height} pixels: it has no pixels to show.")
        if width * height > MAX_PIXELS:
            raise ValueError(_too_big_message(width, height))
        original_size = _oriented_size(image)
        if max(original_size) > max_side:
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: far faster and lighter than
            # decoding a 12-megapixel photo only to shrink it. Ask for at least the final size.
            scale = max_side / max(width, height)
            image.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ValueError(_too_big_message(width, height)) from None
        except _DECODE_ERRORS:
            raise ValueError(
                "This image file is truncated or damaged, so its pixels cannot be read. "
                "Try saving it again, or pick another image."
            ) from None
        image = _apply_orientation(image)
        # High-depth and transparent images shrink while they are converted (to at least
        # max_side a side): their conversions would otherwise copy the full-size image.
        image = _normalise_mode(image, factor=max(1, max(image.size) // max_side))
    return _fit(image, max_side, original_size)


def _too_big_message(width: int | None = None, height: int | None = None) -> str:
    """The learner-facing refusal for an image over :data:`MAX_PIXELS`."""
    size = f" ({width}×{height} pixels)" if width is not None else ""
    return (
        f"This image is too large{size}: CNN Lab accepts up to {MAX_PIXELS // 1_000_000} "
        "megapixels. Please resize it and upload it again."
    )


def _oriented_size(image: Image.Image) -> tuple[int, int]:
    """The size the image will have once its EXIF orientation is applied."""
    width, height = image.size
    try:
        orientation = image.getexif().get(0x0112, 1)
    except _DECODE_ERRORS:
        return width, height
    # Orientations 5-8 include a quarter turn, which swaps width and height.
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _apply_orientation(image: Image.Image) -> Image.Image:
    """Rotate/flip as the camera's EXIF orientation tag says, ignoring malformed metadata."""
    try:
        if image.getexif().get(0x0112, 1) == 1:
            return image  # exif_transpose would return a full copy: a big image's worth of memory
        return ImageOps.exif_transpose(image)
    except _DECODE_ERRORS:
        # Broken metadata should not cost the learner their picture: show it unrotated.
        return image


def _normalise_mode(image: Image.Image, factor: int = 1) -> Image.Image:
    """Convert any Pillow mode to ``"RGB"`` or ``"L"``; high-depth and alpha modes shrink by
    ``factor`` on the way.

    - ``1`` (bilevel) → ``L`` with 0/255.
    - ``P``/``PA``/``LA``/``La``/``RGBA``/``RGBa`` → alpha composited on white, so transparent
      areas look as they do on a web page; grey sources stay ``L``.
    - ``CMYK``, ``YCbCr``, ``HSV``, ``RGBX`` → ``RGB``.
    - ``I;16*`` (16-bit) → ``L`` by the exact full-range map ``v·255/65535``.
    - ``I`` (32-bit integer) → ``L``: values already in 0-255 are kept, values in 0-65535 are
      treated as 16-bit, anything else is stretched from its minimum to its maximum.
    - ``F`` (float) → ``L``: values in [0, 1] are scaled by 255, values in [0, 255] are kept,
      anything else is stretched min-to-max; NaN and ±inf become the darkest value.

    The three high-depth modes are converted strip by strip and averaged over ``factor``×``factor``
    blocks on the way (see :func:`_high_depth_gray`), so a large one never exists as floats.
    """
    mode = image.mode
    if mode in ("RGB", "L"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        if not has_alpha:
            return image.convert("RGB")
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("LA", "La"):
        la = _shrunk(image if mode == "LA" else image.convert("LA"), factor)
        return _composite_on_white(la.convert("RGBA")).convert("L")
    if mode in ("RGBA", "RGBa"):
        return _composite_on_white(
            _shrunk(image if mode == "RGBA" else image.convert("RGBA"), factor)
        )
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _high_depth_gray(image, factor)
    try:
        return image.convert("RGB")
    except ValueError:
        raise ValueError(
            f"Images in the {mode} colour mode are not supported. "
            "Please save it as an ordinary RGB or grayscale image."
        ) from None


def _shrunk(image: Image.Image, factor: int) -> Image.Image:
    """Box-average ``factor``² blocks (Pillow premultiplies alpha for this), before the copies
    that compositing makes: a 7000×7000 RGBA image is 196 MB per copy."""
    return image.reduce(factor) if factor > 1 else image


def _composite_on_white(rgba: Image.Image) -> Image.Image:
    """Flatten an ``RGBA`` image onto a white background, giving ``RGB``."""
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


# Pixels converted per step of a high-depth image: a 4-megapixel strip is 32 MB of float64.
_STRIP_PIXELS = 4_000_000


def _high_depth_gray(image: Image.Image, factor: int) -> Image.Image:
    """A 16-bit, 32-bit integer or float image as ``L``, box-averaged over ``factor``² blocks.

    Rows are converted to float in strips of a few megapixels and averaged at once, so the
    memory used is the decoded image plus one strip, whatever the image's size (a 7000×7000
    float TIFF held whole as float64 would be 400 MB, and its temporaries gigabytes). The last
    ``size % factor`` rows and columns are dropped: less than one output pixel.
    """
    width, height = image.size
    factor = max(1, min(factor, width, height))
    cols, rows = width - width % factor, height - height % factor
    step = max(1, _STRIP_PIXELS // (cols * factor)) * factor

    def strips() -> Iterator[tuple[int, np.ndarray]]:
        for top in range(0, rows, step):
            box = (0, top, cols, min(top + step, rows))
            yield top, np.asarray(image.crop(box)).astype(np.float64)

    lo = hi = 0.0
    if image.mode == "I":
        lo, hi = (float(v) for v in image.getextrema())
    elif image.mode == "F":  # the range of the finite values; NaN and ±inf then take the lowest
        lo, hi = math.inf, -math.inf
        for _, values in strips():
            finite = values[np.isfinite(values)]
            if finite.size:
                lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
        lo, hi = (0.0, 0.0) if lo > hi else (lo, hi)
    to_gray = _gray_scale(image.mode, lo, hi)
    out = np.empty((rows // factor, cols // factor), np.uint8)
    for top, values in strips():
        if image.mode == "F":
            values = np.where(np.isfinite(values), values, lo)
        gray = to_gray(values)
        blocks = gray.reshape(-1, factor, cols // factor, factor).mean(axis=(1, 3))
        out[top // factor : top // factor + len(blocks)] = np.clip(np.rint(blocks), 0, 255)
    return Image.fromarray(out, mode="L")


def _gray_scale(mode: str, lo: float, hi: float) -> Callable[[np.ndarray], np.ndarray]:
    """The map to [0, 255] of a high-depth ``mode`` whose values span [lo, hi]."""
    if mode.startswith("I;16"):
        return lambda v: v * (255.0 / 65535.0)
    if mode == "F" and lo >= 0 and hi <= 1:
        return lambda v: v * 255.0
    if lo >= 0 and hi <= 255:
        return lambda v: v
    if mode == "I" and lo >= 0 and hi <= 65535:
        return lambda v: v * (255.0 / 65535.0)
    span = hi - lo
    if span <= 0:
        return np.zeros_like
    return lambda v: (v - lo) * (255.0 / span)


def _gray_from_float(values: np.ndarray) -> Image.Image:
    """Round values already in [0, 255] to an ``L`` image."""
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def _fit(image: Image.Image, max_side: int, original_size: tuple[int, int]) -> Image.Image:
    """Downscale so the longer side is at most ``max_side``; record the original size if so."""
    if max(original_size) > max_side:
        width, height = original_size
        scale = max_side / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        # reducing_gap=3 first box-reduces by an integer factor, then Lanczos: as sharp as plain
        # Lanczos to the eye, and several times faster on big photos.
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        image.info = {"original_size": original_size}
    else:
        # Source metadata (EXIF, ICC, transparency index) no longer describes these pixels.
        image = image.copy()
        image.info = {}
    return image


def downscale_notice(image: Image.Image) -> str | None:
    """The sentence telling a learner their image was shrunk, or ``None`` if it was not."""
    original = image.info.get("original_size")
    if original is None:
        return None
    return (
        f"Your image was {original[0]}×{original[1]} pixels; it was scaled down to "
        f"{image.width}×{image.height} to keep the lab fast."
    )


def working_size(width: int, height: int, longer: int, shortest: int = 1) -> tuple[int, int]:
    """``(width, height)`` scaled so the longer side is ``longer``, each side at least
    ``shortest``: a strip far thinner than any filter is stretched across instead."""
    if min(width, height, longer, shortest) < 1:
        raise ValueError(f"An image size must be positive, got {width}×{height}.")
    scale = longer / max(width, height)
    return max(shortest, round(width * scale)), max(shortest, round(height * scale))


def working_image(image: Image.Image, longer: int, shortest: int = 1) -> Image.Image:
    """``image`` resized to :func:`working_size` with a box filter (no ringing; a stretched
    side repeats its pixels, so a 1-pixel strip becomes bands, not a blur)."""
    size = working_size(image.width, image.height, longer, shortest)
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.BOX)


def stretch_notice(width: int, height: int, longer: int, shortest: int, why: str) -> str | None:
    """The sentence saying an image was stretched by :func:`working_size`, or ``None``."""
    scale = longer / max(width, height)
    natural = (max(1, round(width * scale)), max(1, round(height * scale)))
    size = working_size(width, height, longer, shortest)
    if size == natural:
        return None
    return (
        f"Your image is {width}×{height} pixels: at {longer} px on its longer side it would be "
        f"{natural[0]}×{natural[1]}, too small for {why}. It is stretched to {size[0]}×{size[1]} "
        f"(its pixels repeated), so shapes in it look distorted."
    )


def image_digest(image: Image.Image) -> str:
    """SHA-256 over mode, size and every pixel byte: a collision-free cache key for an image."""
    digest = hashlib.sha256()
    digest.update(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def to_array(image: Image.Image, grayscale: bool) -> np.ndarray:
    """Pixels as float32 in [0, 1]: shape ``(H, W)`` if ``grayscale`` else ``(3, H, W)``.

    Channels-first is PyTorch's layout, so ``torch.from_numpy(to_array(img, False))[None]`` is a
    ``(1, 3, H, W)`` batch. Colour → gray uses Pillow's ITU-R 601 luma
    (``L = 0.299 R + 0.587 G + 0.114 B``); gray → colour repeats the channel.
    """
    if grayscale:
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
    else:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1)
    return np.ascontiguousarray(pixels / np.float32(255.0))


def drawing_image(rgba: np.ndarray) -> Image.Image:
    """Turn a canvas drawing (``(H, W, 4)`` uint8 RGBA, light strokes) into an ``L`` image.

    The drawing is composited over black, so a transparent background and a black background give
    the same white-on-black picture, the convention of handwritten-digit data sets such as MNIST.
    """
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.shape[0] < 1 or rgba.shape[1] < 1:
        raise ValueError(f"A drawing must be an (H, W, 4) RGBA array, got shape {rgba.shape}.")
    if rgba.size > 4 * MAX_PIXELS or not (
        np.issubdtype(rgba.dtype, np.integer) or np.issubdtype(rgba.dtype, np.floating)
    ):
        raise ValueError("A drawing must be an RGBA array of numbers of a sensible size.")
    # Channel values outside 0-255 (or NaN) cannot come from a canvas: clamp rather than wrap.
    rgba = np.clip(np.nan_to_num(rgba.astype(np.float64), nan=0.0), 0, 255)
    rgb = rgba[..., :3]
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    return _gray_from_float(luma * (rgba[..., 3] / 255.0))


@dataclass(frozen=True)
class Sample:
    """A bundled sample image: what it shows, its file under ``assets/samples`` and its licence."""

    title: str
    description: str
    file: str
    source: str
    author: str
    licence: str


SAMPLES: dict[str, Sample] = {
    "astronaut": Sample(
        title="Astronaut (portrait)",
        description="Eileen Collins in a NASA portrait: a face, a flag and soft gradients.",
        file="astronaut.jpg",
        source="NASA Great Images database, via the scikit-image data set",
        author="NASA",
        licence="Public domain",
    ),
    "cat": Sample(
        title="Cat (animal)",
        description="Chelsea the cat: fur texture, whiskers and edges at many angles and scales.",
        file="chelsea.jpg",
        source="scikit-image data set",
        author="Stefan van der Walt",
        licence="CC0 1.0",
    ),
    "camera": Sample(
        title="Camera (strong edges)",
        description="A man with a camera on a tripod: strong straight edges against the sky.",
        file="camera.png",
        source="scikit-image data set",
        author="Lav Varshney",
        licence="CC0 1.0",
    ),
    "brick": Sample(
        title="Brick wall (texture)",
        description="A brick wall: a repeating texture of horizontal and vertical mortar lines.",
        file="brick.png",
        source="CC0Textures (Bricks25), via the scikit-image data set",
        author="CC0Textures",
        licence="CC0 1.0",
    ),
    "digit": Sample(
        title="Handwritten 7 (digit)",
        description="A handwritten-style 7, 28×28 white on black like the MNIST digits.",
        file="digit7.png",
        source="Drawn in code for CNN Lab",
        author="CNN Lab contributors",
        licence="CC0 1.0",
    ),
}
"""Bundled sample images by name; :func:`sample_image` opens them."""


def sample_image(name: str) -> Image.Image:
    """Open the bundled sample ``name`` (a key of :data:`SAMPLES`) as an ``RGB``/``L`` image."""
    if not isinstance(name, str) or name not in SAMPLES:
        shown = repr(name)[:40] if isinstance(name, str) else "that"
        raise ValueError(f"There is no sample called {shown}; choose one of {', '.join(SAMPLES)}.")
    # A copy, so a caller drawing on its image cannot change what the next caller gets.
    return _load_sample(name).copy()


@functools.cache
def _load_sample(name: str) -> Image.Image:
    """Decode a sample once per process; they are small and read-only."""
    return load_image((SAMPLES_DIR / SAMPLES[name].file).read_bytes())


PATTERNS: dict[str, str] = {
    "checkerboard": "Checkerboard: 8×8 squares, edges in two directions and sharp corners.",
    "stripes": "Stripes at 30°: a slanted grating, for orientation-selective kernels.",
    "circle": "Circle: a bright disc, with edges at every angle.",
    "step edge": "Step edge: dark left half, bright right half, one vertical edge.",
    "impulse": "Impulse: a single bright pixel; a convolution's output is the (flipped) kernel.",
}
"""Synthetic test patterns by name, with what each shows; :func:`pattern_image` draws them."""

# Anti-aliasing factor for the patterns with slanted or curved edges.
_SUPERSAMPLE = 4


def pattern_image(name: str, size: int = 128) -> Image.Image:
    """Draw the synthetic pattern ``name`` (a key of :data:`PATTERNS`) as a square ``L`` image."""
    if not isinstance(name, str) or name not in PATTERNS:
        shown = repr(name)[:40] if isinstance(name, str) else "that"
        raise ValueError(
            f"There is no pattern called {shown}; choose one of {', '.join(PATTERNS)}."
        )
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not 8 <= size <= 2048:
        raise ValueError(f"A pattern must be 8 to 2048 pixels wide, not {str(size)[:20]}.")
    if name == "checkerboard":
        cell = max(1, size // 8)
        y, x = np.indices((size, size))
        values = ((y // cell + x // cell) % 2) * 1.0
    elif name == "stripes":
        values = _supersampled(size, _stripes)
    elif name == "circle":
        values = _supersampled(size, _disc)
    elif name == "step edge":
        values = np.zeros((size, size))
        values[:, size // 2 :] = 1.0
    else:
        values = np.zeros((size, size))
        values[size // 2, size // 2] = 1.0
    return _gray_from_float(values * 255.0)


def _supersampled(
    size: int, shape_fn: Callable[[np.ndarray, np.ndarray, int], np.ndarray]
) -> np.ndarray:
    """Evaluate a 0/1 shape on a finer grid and average: smooth edges without blur."""
    fine = size * _SUPERSAMPLE
    # Sample at fine-pixel centres, in output-pixel units, so the shape sits on the same grid.
    coords = (np.arange(fine) + 0.5) / _SUPERSAMPLE
    y, x = np.meshgrid(coords, coords, indexing="ij")
    values = shape_fn(x, y, size).astype(np.float64)
    return values.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3))


def _stripes(x: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """Bright/dark bands of period size/8 (at least 6 px) running at 30° from the horizontal."""
    angle = math.radians(30)
    # Narrower bands would alias into a blur of grey at small sizes.
    period = max(size / 8, 6.0)
    across = -x * math.sin(angle) + y * math.cos(angle)
    return (across % period) < period / 2


def _disc(x: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """A filled disc of radius 0.3·size at the centre."""
    centre = size / 2
    return (x - centre) ** 2 + (y - centre) ** 2 <= (0.3 * size) ** 2

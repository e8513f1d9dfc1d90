"""The image picker every image page uses, and a cache decorator keyed on exact image digests.

``image_picker(key)`` offers a bundled sample, a synthetic pattern, an upload, the camera and a
drawing canvas, and always returns an :class:`ImageSource`: a bad upload shows the engine's
message and falls back to the default sample, so a page never loses its input.
"""

from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import streamlit as st
from PIL import Image

from cnnlab.images import (
    PATTERNS,
    SAMPLES,
    UPLOAD_TYPES,
    downscale_notice,
    drawing_image,
    image_digest,
    load_image,
    pattern_image,
    sample_image,
)
from ui import picture

SOURCES = ("Sample", "Pattern", "Upload", "Camera", "Draw")
PATTERN_SIZES = (16, 32, 64, 128, 256)
CANVAS_SIDE = 280  # ten times an MNIST digit: big enough to draw on, small enough to compute on


@dataclass(frozen=True)
class ImageSource:
    """The picked image (``RGB`` or ``L``; treat it as read-only), what to call it, its digest
    (the cache key) and the downscale notice shown to the learner, if any."""

    image: Image.Image
    name: str
    digest: str
    notice: str | None


def image_picker(
    key: str,
    *,
    default_sample: str = "astronaut",
    max_side: int = 1024,
    allow_draw: bool = True,
) -> ImageSource:
    """Let the learner pick an image; widgets are keyed ``f"{key}.<name>"``."""
    sources = SOURCES if allow_draw else tuple(s for s in SOURCES if s != "Draw")
    choice = st.radio("Image source", sources, horizontal=True, key=f"{key}.source")
    if choice == "Pattern":
        picked = _pattern(key)
    elif choice == "Upload":
        picked = _upload(key, max_side)
    elif choice == "Camera":
        picked = _camera(key, max_side)
    elif choice == "Draw":
        picked = _drawing(key)
    else:
        return _sample(key, default_sample)
    if picked is None:
        return _fallback(default_sample)
    if picked.notice:
        st.info(picked.notice, icon=":material/info:")
    return picked


def _sample(key: str, default_sample: str) -> ImageSource:
    """A bundled sample chosen from a list, with a thumbnail and what it is good for."""
    names = list(SAMPLES)
    name = st.selectbox(
        "Sample image",
        names,
        index=names.index(default_sample),
        format_func=lambda n: SAMPLES[n].title,
        key=f"{key}.sample",
    )
    source = _sample_source(name)
    sample = SAMPLES[name]
    picture.image(_thumbnail(name), caption=sample.description, width=160, alt=sample.title)
    return source


# Samples and patterns are the same for every student: decoded, digested and encoded once per
# server. The image inside is shared, which ImageSource already asks callers to treat read-only.
@st.cache_resource(max_entries=32, show_spinner=False)
def _sample_source(name: str) -> ImageSource:
    """The sample ``name`` as an :class:`ImageSource`."""
    image = sample_image(name)
    return ImageSource(image, SAMPLES[name].title, image_digest(image), None)


THUMBNAIL_SIDE = 320  # shown 160 px wide: twice that stays sharp on high-density screens


@st.cache_resource(max_entries=32, show_spinner=False)
def _thumbnail(name: str) -> bytes:
    """The sample's thumbnail as a JPEG (not the whole image re-encoded on every run)."""
    image = _sample_source(name).image.copy()
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _fallback(default_sample: str) -> ImageSource:
    """The default sample, used while the chosen source has nothing (valid) to give."""
    st.caption(f"Using the sample **{SAMPLES[default_sample].title}** until then.")
    return _sample_source(default_sample)


def _pattern(key: str) -> ImageSource:
    """A synthetic test pattern of a chosen size."""
    name = st.selectbox("Pattern", list(PATTERNS), format_func=str.capitalize, key=f"{key}.pattern")
    size = st.select_slider(
        "Pattern size (pixels)", PATTERN_SIZES, value=128, key=f"{key}.pattern_size"
    )
    st.caption(PATTERNS[name])
    return _pattern_source(name, size)


@st.cache_resource(max_entries=64, show_spinner=False)
def _pattern_source(name: str, size: int) -> ImageSource:
    """The pattern ``name`` of ``size`` pixels as an :class:`ImageSource` (shared, read-only)."""
    image = pattern_image(name, size)
    return ImageSource(image, f"{name.capitalize()} {size}×{size}", image_digest(image), None)


def _upload(key: str, max_side: int) -> ImageSource | None:
    """An uploaded file, or ``None`` (after saying why) when there is none or it is unusable."""
    uploaded = st.file_uploader(
        "Upload an image",
        type=list(UPLOAD_TYPES),
        key=f"{key}.upload",
        help="PNG, JPEG, WebP, BMP, GIF (first frame) or TIFF. "
        f"Images larger than {max_side} px on a side are scaled down.",
    )
    if uploaded is None:
        st.caption("No file uploaded yet.")
        return None
    return _decoded(key, "upload", uploaded.file_id, uploaded.name, uploaded.getvalue(), max_side)


def _camera(key: str, max_side: int) -> ImageSource | None:
    """A photo from the learner's camera, or ``None`` until one is taken."""
    photo = st.camera_input("Take a picture", key=f"{key}.camera")
    if photo is None:
        st.caption("No photo taken yet.")
        return None
    return _decoded(key, "camera", photo.file_id, "Camera photo", photo.getvalue(), max_side)


def _decoded(
    key: str, kind: str, file_id: str, name: str, data: bytes, max_side: int
) -> ImageSource | None:
    """Decode file bytes once per file (remembered in this session only), or show the error."""
    memo_key = f"{key}._decoded"
    signature = (kind, file_id, max_side)
    memo = st.session_state.get(memo_key)
    # Every rerun would otherwise decode (and digest) the same upload again; the session is the
    # right scope, since nobody else may see this learner's image.
    if memo is None or memo[0] != signature:
        try:
            image = load_image(data, max_side=max_side)
        except ValueError as error:
            st.session_state[memo_key] = (signature, str(error))
        else:
            source = ImageSource(image, name, image_digest(image), downscale_notice(image))
            st.session_state[memo_key] = (signature, source)
        memo = st.session_state[memo_key]
    result = memo[1]
    if isinstance(result, str):
        st.error(result, icon=":material/error:")
        return None
    return result


def _drawing(key: str) -> ImageSource | None:
    """A white-on-black drawing, like the handwritten digits CNNs are often trained on."""
    # Imported here: the component registers itself on import, which only drawing pages need.
    from streamlit_drawable_canvas import st_canvas

    stroke = st.slider("Brush width", 4, 40, 20, key=f"{key}.stroke")
    st.caption("Draw with the mouse or a finger; its toolbar undoes, redoes and clears.")
    result = st_canvas(
        stroke_width=stroke,
        stroke_color="#ffffff",
        background_color="#000000",
        height=CANVAS_SIDE,
        width=CANVAS_SIDE,
        drawing_mode="freedraw",
        return_image_data=True,
        key=f"{key}.canvas",
    )
    objects = (result.json_data or {}).get("objects") or []
    rgba = result.image_data if objects else None
    if rgba is None:
        st.caption("Nothing drawn yet.")
        return None
    image = drawing_image(rgba)
    return ImageSource(image, "Your drawing", image_digest(image), None)


def _array_digest(array: np.ndarray) -> str:
    """SHA-256 over dtype, shape and every element (Streamlit samples arrays of 500k+ items)."""
    digest = hashlib.sha256(f"{array.dtype.str}:{array.shape}:".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def cache_key(*parts: object) -> str:
    """One exact string for a cache entry: the image digest, arrays by the SHA-256 of their
    dtype, shape and every byte, then the ``repr`` of everything else.

    ``st.cache_data`` hashes every argument on every rerun (big arrays only by sampling); one
    short string that already stands for every byte is both exact and cheap to hash.
    """
    text = []
    for part in parts:
        if isinstance(part, ImageSource):
            text.append(part.digest)
        elif isinstance(part, np.ndarray):
            text.append(_array_digest(part))
        else:
            text.append(repr(part))
    return "|".join(text)


_HASH_FUNCS: dict[Any, Callable[[Any], Any]] = {
    Image.Image: image_digest,
    ImageSource: lambda source: source.digest,
    np.ndarray: _array_digest,
}

F = TypeVar("F", bound=Callable[..., Any])


def cache_on_image(func: F | None = None, *, max_entries: int = 64, ttl: float = 3600) -> Any:
    """``st.cache_data`` whose key uses the exact digest of images, ImageSources and arrays.

    Streamlit hashes PIL images without their size or mode and samples big arrays, so two
    learners' different images could share a cache entry. Use as ``@cache_on_image`` or
    ``@cache_on_image(max_entries=16)``. The cache is shared by every session, so it is bounded.
    """
    if func is None:
        return functools.partial(cache_on_image, max_entries=max_entries, ttl=ttl)
    cached = st.cache_data(func, max_entries=max_entries, ttl=ttl, hash_funcs=_HASH_FUNCS)

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        # hash_funcs match exact types; a decoder's subclass (PngImageFile, ...) would slip back
        # to Streamlit's weak image hash, so hand such images over as plain Image copies.
        args = tuple(_plain(value) for value in args)
        kwargs = {name: _plain(value) for name, value in kwargs.items()}
        return cached(*args, **kwargs)

    call.clear = cached.clear  # type: ignore[attr-defined]
    return call


def _plain(value: Any) -> Any:
    """A PIL image subclass as a plain ``Image.Image`` (same pixels); anything else unchanged."""
    if isinstance(value, Image.Image) and type(value) is not Image.Image:
        return value.copy()
    return value

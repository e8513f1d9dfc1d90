"""Encoded pictures shown as ``st.image`` would show them, converted once instead of per rerun.

``st.image`` decodes bytes again on every run, and encodes them again when they are wider than
their ``width`` (a bilinear resize) or not in the format it picks for them (PNG bytes without
an alpha channel become a JPEG at quality 90): 3–15 ms per picture on every rerun of a page
whose pictures did not change. :func:`image` does that conversion once per (picture, width),
with Streamlit's own functions, and hands Streamlit the result, which it passes through
untouched: the browser receives the very file it did before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import streamlit as st
from streamlit.elements.lib import image_utils
from streamlit.elements.lib.layout_utils import LayoutConfig

_CONVERTED: OrderedDict[tuple[bytes, int | str], tuple[bytes, str]] = OrderedDict()
_LOCK = threading.Lock()
# The pictures of a class's pages; the least recently shown goes first. Bounded in bytes too
# (each entry holds the picture and its converted file): the explorer's sheets reach megabytes.
MAX_PICTURES = 128
MAX_BYTES = 64 * 2**20
_held = 0


def shown_bytes(data: bytes, width: int | str) -> tuple[bytes, str]:
    """What ``st.image(data, width=width)`` sends the browser, and its format."""
    # Keyed on the bytes themselves, not on a cache hash of them: Python hashes bytes in C and
    # keeps the hash on the object, so the same object from a page's resource cache costs
    # nothing and an equal copy (a data cache unpickles one per run) one pass over its bytes;
    # Streamlit's cache hashing of the explorer's megabyte sheets cost a third of the saving.
    key = (data, width)
    with _LOCK:
        found = _CONVERTED.get(key)
        if found is not None:
            _CONVERTED.move_to_end(key)
            return found
    fmt = image_utils._validate_image_format_string(data, "auto")
    converted = image_utils._ensure_image_size_and_format(data, LayoutConfig(width=width), fmt)
    global _held
    with _LOCK:
        if key not in _CONVERTED:
            _CONVERTED[key] = converted, fmt
            _held += len(data) + len(converted)
        while len(_CONVERTED) > MAX_PICTURES or (_held > MAX_BYTES and len(_CONVERTED) > 1):
            (old, _), (old_converted, _) = _CONVERTED.popitem(last=False)
            _held -= len(old) + len(old_converted)
    return converted, fmt


def array_bytes(array: np.ndarray) -> bytes:
    """The file ``st.image`` encodes a numpy picture into (JPEG at quality 100, PNG with alpha),
    for a cache to keep and :func:`image` to show."""
    checked = image_utils._clip_image(image_utils._verify_np_shape(array), clamp=False)
    return image_utils._np_array_to_bytes(checked, output_format="auto")


def image(
    data: bytes | list[bytes], where: Any = None, width: int | str = "content", **kwargs: Any
) -> None:
    """``st.image`` of encoded ``data`` (one picture or a list; in ``where``, a column, if
    given) without the per-run decoding and re-encoding; ``kwargs`` are ``st.image``'s."""
    converted = [shown_bytes(d, width) for d in (data if isinstance(data, list) else [data])]
    formats = {fmt for _, fmt in converted}
    # One format for all, or "auto": Streamlit then reads each converted file's own format,
    # which is the one it was converted to, and still passes it through.
    fmt = formats.pop() if len(formats) == 1 else "auto"
    files = [c for c, _ in converted]
    (where or st).image(files if isinstance(data, list) else files[0], width=width,
                        output_format=fmt, **kwargs)  # fmt: skip

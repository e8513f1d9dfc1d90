"""Pictures shown through ui.picture reach the browser exactly as st.image would send them."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _page() -> None:
    import io

    import numpy as np
    import streamlit as st
    from PIL import Image

    from ui import picture

    def png(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    ramp = np.linspace(0, 255, 300 * 200 * 3).reshape(200, 300, 3).astype(np.uint8)
    alpha = np.full((50, 80, 4), 200, dtype=np.uint8)
    cases = [(png(ramp), 120), (png(ramp), "stretch"), (png(alpha), 60)]
    for data, width in cases:  # Streamlit's own conversion, then ours, side by side
        st.image(data, width=width)
        picture.image(data, width=width)
    st.image(ramp, width="stretch")  # an array: encoded by st.image on every run, or once
    picture.image(picture.array_bytes(ramp), width="stretch")
    st.image([png(ramp), png(alpha)], width=100)  # a list, in mixed formats
    picture.image([png(ramp), png(alpha)], width=100)
    st.image(Image.fromarray(ramp[::-1]))  # a drawn PIL picture: encoded per run, or once
    picture.image(picture.array_bytes(np.asarray(Image.fromarray(ramp[::-1]))))


def test_the_browser_gets_the_same_file_as_from_st_image() -> None:
    at = AppTest.from_function(_page).run()
    assert not at.exception
    urls = [[i.url for i in image.proto.imgs] for image in at.get("image")]
    assert len(urls) == 12
    assert len({str(u) for u in urls}) == 6  # six different conversions, each matched
    # resized to a JPEG, re-encoded as a JPEG, resized keeping its alpha channel, an array,
    # a list of both kinds, a drawn PIL picture
    kinds = [[u.rsplit(".", 1)[-1] for u in us] for us in urls[::2]]
    assert kinds == [["jpg"], ["jpg"], ["png"], ["jpg"], ["jpg", "png"], ["jpg"]]
    assert urls[::2] == urls[1::2]


def test_a_picture_is_converted_once_per_content_and_width(monkeypatch) -> None:
    import io

    from PIL import Image
    from streamlit.elements.lib import image_utils

    from ui import picture

    calls = []
    convert = image_utils._ensure_image_size_and_format

    def counted(*args):
        calls.append(args[1].width)
        return convert(*args)

    monkeypatch.setattr(image_utils, "_ensure_image_size_and_format", counted)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 32), "red").save(buffer, format="PNG")
    data, twin = buffer.getvalue(), bytes(bytearray(buffer.getvalue()))
    first = picture.shown_bytes(data, 32)
    assert picture.shown_bytes(data, 32) == first
    assert picture.shown_bytes(twin, 32) == first  # an equal copy (a data cache's) is found too
    assert picture.shown_bytes(data, "stretch")[1] == "JPEG"
    assert calls == [32, "stretch"]
